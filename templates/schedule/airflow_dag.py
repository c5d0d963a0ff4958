"""Airflow DAG: launch the image-tagger Flex Template daily for that day's partition.

Each run tags the day's new URL list into gs://BUCKET/tags/dt=YYYY-MM-DD/ and skips every
image_id already present in earlier partitions, so reruns and backfills (airflow dags
backfill) never duplicate and, if a run died midway, simply finish the partition.
Needs apache-airflow-providers-google. Replace PROJECT, REGION and BUCKET.
"""

from __future__ import annotations

import datetime as dt

from airflow import DAG
from airflow.providers.google.cloud.operators.dataflow import DataflowStartFlexTemplateOperator

PROJECT, REGION, BUCKET = "PROJECT", "REGION", "BUCKET"

with DAG(
    dag_id="image_tagger_daily",
    start_date=dt.datetime(2026, 11, 1),
    schedule="@daily",
    catchup=True,  # backfills walk the missed days, one partition each
    max_active_runs=2,
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=15)},
) as dag:
    DataflowStartFlexTemplateOperator(
        task_id="tag_images",
        project_id=PROJECT,
        location=REGION,
        wait_until_finished=True,
        body={
            "launchParameter": {
                "jobName": "image-tagger-{{ ds_nodash }}",
                "containerSpecGcsPath": f"gs://{BUCKET}/templates/image-tagger.json",
                "parameters": {
                    "input": f"gs://{BUCKET}/lists/dt={{{{ ds }}}}/urls-*.csv",
                    "output": f"gs://{BUCKET}/tagged/",
                    "partition": "dt={{ ds }}",
                    "skip_existing": "true",
                    "detector_weights": f"gs://{BUCKET}/models/yolox_nano.onnx",
                    "detector_weights_sha256": "615e266100c341c28d62abe255f7a6d9d7e2b91c1b0b87fc24c5d9e53141a57b",
                    "num_shards": "16",
                },
                "environment": {
                    "machineType": "n2-standard-4",
                    "maxWorkers": 50,
                    "numWorkers": 2,
                    "additionalExperiments": ["use_runner_v2"],
                },
            }
        },
    )
