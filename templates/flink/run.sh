#!/usr/bin/env bash
# Submit the tag job to a Flink cluster. Beam's FlinkRunner starts its job server from the
# beam-runners-flink job-server jar (downloaded on first use, or --flink_job_server_jar).
set -euo pipefail
FLINK_MASTER=${FLINK_MASTER:-flink-jobmanager:8081}
MODE=${MODE:-EXTERNAL}   # EXTERNAL: worker-pool sidecar (worker-pool.yaml); DOCKER: Flink starts containers
IMAGE=${IMAGE:-REGION-docker.pkg.dev/PROJECT/REPO/image-tagger:latest}
if [ "$MODE" = EXTERNAL ]; then ENV_CONFIG=localhost:50000; else ENV_CONFIG=$IMAGE; fi
python -m pipeline.tag \
  --runner=FlinkRunner --flink_master="$FLINK_MASTER" --flink_version=1.19 \
  --environment_type="$MODE" --environment_config="$ENV_CONFIG" \
  --parallelism=8 \
  --input="gs://BUCKET/lists/urls-*.csv" --output="gs://BUCKET/tagged/" --partition="dt=$(date -u +%F)" \
  --skip_existing \
  --detector_weights="gs://BUCKET/models/yolox_nano.onnx" \
  --num_shards=32
