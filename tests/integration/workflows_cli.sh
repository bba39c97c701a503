#!/usr/bin/env bash
# The workflow side of the comfyq CLI: workflows, workflows show, render,
# and the schema check at submit (which refuses before Redis is reached,
# so no server is needed here). Usage: workflows_cli.sh PATH-TO-comfyq
set -u
CQ=$1
DATA=$(cd "$(dirname "$0")/../data" && pwd)
export COMFYQ_REDIS_URL=redis://127.0.0.1:1	# never reached
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0 passes=0

check() {	# check NAME EXPECTED-EXIT COMMAND... ; output in $tmp/out
	local name=$1 want=$2; shift 2
	"$@" >"$tmp/out" 2>&1
	local got=$?
	if [ "$got" -ne "$want" ]; then
		echo "FAIL $name: exit $got, want $want"; sed 's/^/    /' "$tmp/out"
		fails=$((fails + 1)); return 1
	fi
	passes=$((passes + 1))
}
has() {	# has NAME TEXT: the last output holds TEXT (fixed string)
	if grep -qF -- "$2" "$tmp/out"; then passes=$((passes + 1)); else
		echo "FAIL $1: output lacks '$2'"; sed 's/^/    /' "$tmp/out"
		fails=$((fails + 1))
	fi
}

check list 0 "$CQ" workflows
has list "sdxl_face_ipadapter  Face-preserving SDXL generation"
has list "params: image* seed steps cfg min_cfg aspect width height duration fps"
check show 0 "$CQ" workflows show svd_img2vid
has show "output: video, width x height, duration seconds at fps frames per second (at most 48 frames)"
has show "16:9: width=1024 height=576"
check show-json 0 "$CQ" workflows show smoke_invert --json
has show-json '"name":"smoke_invert"'
check show-missing 2 "$CQ" workflows show nope
has show-missing "workflows: no template named nope"
check bad-dir 2 "$CQ" workflows --workflows /nonexistent
has bad-dir "workflows: /nonexistent: cannot open the folder"

# render prints exactly the graph the golden test pins.
check render 0 "$CQ" render --spec "$DATA/golden/txt2img_loras.spec.json" \
	--job-id job-1 --prefix comfyq/job-1/out
cmp -s "$tmp/out" "$DATA/golden/txt2img_loras.graph.json" &&
	passes=$((passes + 1)) || { echo "FAIL render: differs from golden";
	diff "$tmp/out" "$DATA/golden/txt2img_loras.graph.json" | head; fails=$((fails + 1)); }
# Flags beside --spec override its fields, params key by key.
check render-override 0 "$CQ" render \
	--spec "$DATA/golden/txt2img_loras.spec.json" --param seed=7 --lora face:0.5
has render-override '"seed":	7,'
has render-override '"width":	1344'
has render-override '"lora_name":	"face.safetensors"'
grep -q style.safetensors "$tmp/out" && { echo "FAIL render-override: --lora kept the file's loras"; fails=$((fails + 1)); }
check render-cn 0 "$CQ" render --workflow sdxl_txt2img --param prompt=x \
	--controlnet "canny:0.6:$DATA/images/ok.png:0.2:0.7" \
	--controlnet "depth:1:https://example.com/d.png?a=1:b"
has render-cn '"start_percent":	0.2'
has render-cn '"end_percent":	0.7'
has render-cn '"image":	"<upload:controlnet1>"'
check render-input 0 "$CQ" render --workflow sdxl_img2img --param prompt=1984 \
	--input "image=$DATA/images/ok.png" --param seed=1
has render-input '"text":	"1984"'
has render-input '"image":	"<upload:image>"'

# Bad input is named at submit, before anything is sent.
check bad-width 2 "$CQ" submit --workflow sdxl_txt2img --param prompt=x --param width=100000
has bad-width "comfyq: width: 100000 not in 512..2048"
check bad-type 2 "$CQ" submit --workflow sdxl_txt2img --param prompt=x --param steps=many
has bad-type "comfyq: --param steps: 'many' is not an int"
check no-prompt 2 "$CQ" submit --workflow sdxl_txt2img
has no-prompt "comfyq: prompt: required"
check bad-lora 2 "$CQ" submit --workflow sdxl_txt2img --param prompt=x --lora style:20
has bad-lora "comfyq: loras[0]: weight 20 not in -10..10"
check bad-tag 2 "$CQ" submit --workflow sdxl_txt2img --param "prompt=x <lora:a:-11>"
has bad-tag "comfyq: prompt: <lora:a:-11>: weight -11 not in -10..10"
check bad-cn 2 "$CQ" submit --workflow sdxl_txt2img --param prompt=x --controlnet canny:0.5
has bad-cn "comfyq: --controlnet: 'canny:0.5' is not TYPE:STRENGTH:IMAGE_FILE[:START:END]"
check bad-cn-file 2 "$CQ" submit --workflow sdxl_txt2img --param prompt=x --controlnet canny:0.5:/nonexistent.png
has bad-cn-file "comfyq: --controlnet: /nonexistent.png: No such file or directory"
check bad-input 2 "$CQ" submit --workflow sdxl_img2img --param prompt=x --input image
has bad-input "comfyq: --input: expected NAME=FILE_OR_URL, got 'image'"
check missing-image 2 "$CQ" submit --workflow sdxl_img2img --param prompt=x
has missing-image "comfyq: image: required (give inputs.image)"
printf '{"1":{"class_type":"ImageInvert","inputs":{"image":["2",0]}},"2":{"class_type":"SaveImage","inputs":{"images":["1",0]}}}' >"$tmp/g.json"
check bad-graph 2 "$CQ" submit --graph "$tmp/g.json"
has bad-graph "comfyq: node 1 input image: node 2 (SaveImage) has no output 0 (it has 0)"
check bad-spec 2 "$CQ" submit --spec /nonexistent.json
has bad-spec "comfyq: --spec: /nonexistent.json: No such file or directory"
# A template only the workers have is theirs to judge: it reaches Redis.
check unknown-here 3 "$CQ" submit --workflow made_elsewhere --param anything=1

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
