#!/usr/bin/env bash
# Recipe: a ZenML stack on Kubeflow Pipelines, with object storage, a container registry, an image builder,
# a remote MLflow tracking server and a GPU step operator. As configs/stacks/kubernetes.sh, with Kubeflow
# as the orchestrator (its UI shows the pipeline graph; it runs schedules, e.g. configs/retrain_schedule.yaml).
#
# On the machine that submits runs (this project installed in .venv):
#   pip install "kfp>=2.6.0" "kfp-kubernetes>=1.1.0" "kubernetes>=21.7,<26"   # or: pip install -e '.[kubeflow]'
# Then run with:
#   zenml pipeline run pipelines.training.training_pipeline -c configs/stacks/kubeflow.yaml
set -euo pipefail

CONTEXT=${CONTEXT:-my-cluster}
KUBEFLOW_HOST=${KUBEFLOW_HOST:-https://kubeflow.example.com/pipeline}   # the Kubeflow Pipelines API
BUCKET=${BUCKET:-s3://my-ser-bucket}
REGISTRY=${REGISTRY:-123456789012.dkr.ecr.eu-west-1.amazonaws.com}
MLFLOW_URI=${MLFLOW_URI:-https://mlflow.example.com}

zenml secret create s3_credentials --aws_access_key_id="$AWS_ACCESS_KEY_ID" --aws_secret_access_key="$AWS_SECRET_ACCESS_KEY"
zenml artifact-store register ser_s3 --flavor=s3 --path="$BUCKET/zenml" \
    --key='{{s3_credentials.aws_access_key_id}}' --secret='{{s3_credentials.aws_secret_access_key}}'
zenml container-registry register ser_registry --flavor=aws --uri="$REGISTRY"
zenml image-builder register ser_kaniko --flavor=kaniko --kubernetes_context="$CONTEXT" --kubernetes_namespace=kubeflow
zenml secret create mlflow_credentials --username="$MLFLOW_TRACKING_USERNAME" --password="$MLFLOW_TRACKING_PASSWORD"
zenml experiment-tracker register ser_mlflow --flavor=mlflow --tracking_uri="$MLFLOW_URI" \
    --tracking_username='{{mlflow_credentials.username}}' --tracking_password='{{mlflow_credentials.password}}'

# Kubeflow Pipelines: in-cluster (kubernetes_context) or a remote endpoint (kubeflow_hostname + client_username /
# client_password in the run config's settings.orchestrator for a multi-user deployment)
zenml orchestrator register ser_kubeflow --flavor=kubeflow --kubernetes_context="$CONTEXT" \
    --kubeflow_hostname="$KUBEFLOW_HOST"

# GPUs: pod settings of the GPU steps (configs/stacks/kubeflow.yaml, parameters.resources.gpu), or this step
# operator (set parameters.resources.gpu.step_operator: ser_gpu)
zenml step-operator register ser_gpu --flavor=kubernetes --kubernetes_context="$CONTEXT" --kubernetes_namespace=kubeflow

zenml stack register ser_kubeflow -o ser_kubeflow -a ser_s3 -c ser_registry -i ser_kaniko -e ser_mlflow -s ser_gpu --set
