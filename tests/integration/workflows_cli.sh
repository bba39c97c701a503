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
. "$(dirname "$0")/../lib/check.sh"

check list 0 "$CQ" workflows
hasf list "sdxl_face_ipadapter  Face-preserving SDXL generation"
hasf list "params: image* seed steps cfg min_cfg aspect width height duration fps"
check show 0 "$CQ" workflows show svd_img2vid
hasf show "output: video, width x height, duration seconds at fps frames per second (at most 48 frames)"
hasf show "16:9: width=1024 height=576"
check show-json 0 "$CQ" workflows show smoke_invert --json
hasf show-json '"name":"smoke_invert"'
check show-missing 2 "$CQ" workflows show nope
hasf show-missing "workflows: no template named nope"
check bad-dir 2 "$CQ" workflows --workflows /nonexistent
hasf bad-dir "workflows: /nonexistent: No such file or directory"

# render prints exactly the graph the golden test pins.
check render 0 "$CQ" render --spec "$DATA/golden/txt2img_loras.spec.json" \
	--job-id job-1 --prefix comfyq/job-1/out
if cmp -s "$tmp/out" "$DATA/golden/txt2img_loras.graph.json"; then ok; else
	bad "render: differs from golden"
	diff "$tmp/out" "$DATA/golden/txt2img_loras.graph.json" | head
fi
# Flags beside --spec override its fields, params key by key.
check render-override 0 "$CQ" render \
	--spec "$DATA/golden/txt2img_loras.spec.json" --param seed=7 --lora face:0.5
hasf render-override '"seed":	7,'
hasf render-override '"width":	1344'
hasf render-override '"lora_name":	"face.safetensors"'
grep -q style.safetensors "$tmp/out" && { echo "FAIL render-override: --lora kept the file's loras"; fails=$((fails + 1)); }
check render-cn 0 "$CQ" render --workflow sdxl_txt2img --param prompt=x \
	--controlnet "canny:0.6:$DATA/images/ok.png:0.2:0.7" \
	--controlnet "depth:1:https://example.com/d.png?a=1:b"
hasf render-cn '"start_percent":	0.2'
hasf render-cn '"end_percent":	0.7'
hasf render-cn '"image":	"<upload:controlnet1>"'
check render-input 0 "$CQ" render --workflow sdxl_img2img --param prompt=1984 \
	--input "image=$DATA/images/ok.png" --param seed=1
hasf render-input '"text":	"1984"'
hasf render-input '"image":	"<upload:image>"'

# Bad input is named at submit, before anything is sent.
check bad-width 2 "$CQ" submit --workflow sdxl_txt2img --param prompt=x --param width=100000
hasf bad-width "comfyq: width: 100000 not in 512..2048"
check bad-type 2 "$CQ" submit --workflow sdxl_txt2img --param prompt=x --param steps=many
hasf bad-type "comfyq: --param steps: 'many' is not an int"
check no-prompt 2 "$CQ" submit --workflow sdxl_txt2img
hasf no-prompt "comfyq: prompt: required"
check bad-lora 2 "$CQ" submit --workflow sdxl_txt2img --param prompt=x --lora style:20
hasf bad-lora "comfyq: loras[0]: weight 20 not in -10..10"
check bad-tag 2 "$CQ" submit --workflow sdxl_txt2img --param "prompt=x <lora:a:-11>"
hasf bad-tag "comfyq: prompt: <lora:a:-11>: weight -11 not in -10..10"
check bad-cn 2 "$CQ" submit --workflow sdxl_txt2img --param prompt=x --controlnet canny:0.5
hasf bad-cn "comfyq: --controlnet: 'canny:0.5' is not TYPE:STRENGTH:IMAGE_FILE[:START:END]"
check bad-cn-file 2 "$CQ" submit --workflow sdxl_txt2img --param prompt=x --controlnet canny:0.5:/nonexistent.png
hasf bad-cn-file "comfyq: --controlnet: /nonexistent.png: No such file or directory"
check bad-input 2 "$CQ" submit --workflow sdxl_img2img --param prompt=x --input image
hasf bad-input "comfyq: --input: expected NAME=FILE_OR_URL, got 'image'"
check missing-image 2 "$CQ" submit --workflow sdxl_img2img --param prompt=x
hasf missing-image "comfyq: image: required (give inputs.image)"
printf '{"1":{"class_type":"ImageInvert","inputs":{"image":["2",0]}},"2":{"class_type":"SaveImage","inputs":{"images":["1",0]}}}' >"$tmp/g.json"
check bad-graph 2 "$CQ" submit --graph "$tmp/g.json"
hasf bad-graph "comfyq: node 1 input image: node 2 (SaveImage) has no output 0 (it has 0)"
check bad-spec 2 "$CQ" submit --spec /nonexistent.json
hasf bad-spec "comfyq: --spec: /nonexistent.json: No such file or directory"
# A template only the workers have is theirs to judge: it reaches Redis.
check unknown-here 3 "$CQ" submit --workflow made_elsewhere --param anything=1

finish
