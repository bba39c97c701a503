// An S3-compatible server on loopback for tests/integration/s3.sh: s3rver
// (the fork that checks AWS Signature Version 4, in headers and in
// presigned URLs), its objects under DIR, the bucket BUCKET made at start,
// the one account s3rver knows (access key S3RVER, secret S3RVER). It
// listens on 127.0.0.1 on a free port and writes the port to PORT_FILE.
// Each request is logged on stdout (method, path with query, status, and
// S3's error code), so a test can count what reached the store.
//   node serve.js DIR BUCKET PORT_FILE
'use strict';

const fs = require('fs');
const S3rver = require('@20minutes/s3rver');

const [dir, bucket, portFile] = process.argv.slice(2);
if (!dir || !bucket || !portFile) {
  console.error('usage: node serve.js DIR BUCKET PORT_FILE');
  process.exit(2);
}

const server = new S3rver({
  address: '127.0.0.1',
  port: 0,
  directory: dir,
  silent: true,
  vhostBuckets: false,
  configureBuckets: [{ name: bucket }],
});

// First of all middleware, so it sees every request and its answer.
server.middleware.unshift(async (ctx, next) => {
  const what = `${ctx.method} ${ctx.originalUrl}`;
  try {
    await next();
    console.log(`${what} ${ctx.status}`);
  } catch (err) {
    console.log(`${what} ${err.status || 500} ${err.code || err.message}`);
    throw err;
  }
});

server.run().then((addr) => {
  fs.writeFileSync(portFile + '.tmp', String(addr.port));
  fs.renameSync(portFile + '.tmp', portFile);
  console.log(`listening on 127.0.0.1:${addr.port}`);
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => server.close().then(() => process.exit(0)));
}
