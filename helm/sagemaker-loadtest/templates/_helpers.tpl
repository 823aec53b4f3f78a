{{/* Names ------------------------------------------------------------------------------------- */}}

{{- define "smload.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <release>-sagemaker-loadtest (TEAM.md contract), whatever the release is called: predictable names. */}}
{{- define "smload.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "smload.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* Object names carry a role suffix: keep the base short enough for it. */}}
{{- define "smload.master" -}}
{{- printf "%s-master" (include "smload.fullname" . | trunc 56 | trimSuffix "-") }}
{{- end }}

{{- define "smload.worker" -}}
{{- printf "%s-worker" (include "smload.fullname" . | trunc 56 | trimSuffix "-") }}
{{- end }}

{{- define "smload.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "smload.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "smload.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Labels ------------------------------------------------------------------------------------ */}}

{{- define "smload.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "smload.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: sagemaker-loadtest
{{- end }}

{{- define "smload.selectorLabels" -}}
app.kubernetes.io/name: {{ include "smload.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of one role: include "smload.roleLabels" (list $ "master") */}}
{{- define "smload.roleLabels" -}}
{{ include "smload.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "smload.roleSelectorLabels" -}}
{{ include "smload.selectorLabels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* Checks at render time that a schema cannot express -------------------------------------- */}}

{{- define "smload.validate" -}}
{{- $p := .Values.payload }}
{{- if and $p.existingConfigMap (or $p.files $p.binaryFiles) }}
{{- fail "payload: set payload.files/payload.binaryFiles (a ConfigMap the chart makes) or payload.existingConfigMap, not both" }}
{{- end }}
{{- range $name, $_ := $p.files }}
{{- if hasKey $p.binaryFiles $name }}
{{- fail (printf "payload: %q is in both payload.files and payload.binaryFiles: keep one" $name) }}
{{- end }}
{{- end }}
{{- if and $p.file (not (include "smload.payloadConfigMap" .)) }}
{{- fail "payload.file names a file of the payload ConfigMap: set payload.files or payload.existingConfigMap too (or use payload.example)" }}
{{- end }}
{{- if and $p.file (or $p.files $p.binaryFiles) (not (or (hasKey $p.files $p.file) (hasKey $p.binaryFiles $p.file))) }}
{{- fail (printf "payload.file: %q is not one of payload.files/payload.binaryFiles" $p.file) }}
{{- end }}
{{- if and (not (include "smload.payloadPath" .)) (not (include "smload.customLocustfile" .)) (not (include "smload.llmPrompts" .)) }}
{{- fail "payload: the bundled locustfile needs request bodies: set payload.example, payload.files or payload.existingConfigMap (or llm.promptTokens / llm.dataset)" }}
{{- end }}
{{- if and (include "smload.llmPrompts" .) (or $p.files $p.binaryFiles $p.existingConfigMap) }}
{{- fail "payload: the prompts come from llm.promptTokens / llm.dataset (no --payload then): remove payload.files/payload.binaryFiles/payload.existingConfigMap, or the LLM prompts" }}
{{- end }}
{{- $l := .Values.llm }}
{{- if and $l.existingConfigMap $l.files }}
{{- fail "llm: set llm.files (a ConfigMap the chart makes) or llm.existingConfigMap, not both" }}
{{- end }}
{{- range $value := list "dataset" "tokenizer" "requestTemplate" }}
{{- $file := index $l $value }}
{{- if and $file (not (include "smload.llmConfigMap" $)) }}
{{- fail (printf "llm.%s names a file of the LLM ConfigMap: set llm.files or llm.existingConfigMap too" $value) }}
{{- end }}
{{- if and $file $l.files (not (hasKey $l.files $file)) }}
{{- fail (printf "llm.%s: %q is not one of llm.files" $value $file) }}
{{- end }}
{{- end }}
{{- if and $l.dataset $l.promptTokens }}
{{- fail "llm: set llm.dataset (its prompts) or llm.promptTokens (synthetic prompts), not both" }}
{{- end }}
{{- if and .Values.locustfile.content .Values.locustfile.existingConfigMap }}
{{- fail "locustfile: set locustfile.content or locustfile.existingConfigMap, not both" }}
{{- end }}
{{- if and (not (include "smload.customLocustfile" .)) (not .Values.endpoint.name) }}
{{- fail "endpoint.name is required with the bundled locustfile: --set endpoint.name=<your SageMaker endpoint>" }}
{{- end }}
{{- $a := .Values.worker.autoscaling }}
{{- if and $a.enabled (lt (int $a.maxReplicas) (int $a.minReplicas)) }}
{{- fail (printf "worker.autoscaling.maxReplicas (%d) must be >= worker.autoscaling.minReplicas (%d)" (int $a.maxReplicas) (int $a.minReplicas)) }}
{{- end }}
{{- if and (eq .Values.mode "job") $a.enabled }}
{{- fail "worker.autoscaling.enabled: an HPA cannot scale Job workers; use mode=deployment or worker.replicas" }}
{{- end }}
{{- if and (eq .Values.mode "job") (lt (int .Values.worker.replicas) 1) }}
{{- fail "worker.replicas must be >= 1 in job mode: the master waits for that many workers" }}
{{- end }}
{{- if and .Values.ingress.enabled (eq .Values.mode "job") }}
{{- fail "ingress.enabled: job mode runs headless, there is no web UI to expose" }}
{{- end }}
{{- if and .Values.rbac.create (not .Values.rbac.subjects) }}
{{- fail "rbac.subjects: name who may run smload k8s (e.g. a User or a ServiceAccount) when rbac.create is true" }}
{{- end }}
{{- end }}

{{/* Pod pieces --------------------------------------------------------------------------------- */}}

{{- define "smload.customLocustfile" -}}
{{- if or .Values.locustfile.content .Values.locustfile.existingConfigMap }}true{{ end }}
{{- end }}

{{- define "smload.locustfileConfigMap" -}}
{{- default (printf "%s-locustfile" (include "smload.fullname" . | trunc 52 | trimSuffix "-")) .Values.locustfile.existingConfigMap }}
{{- end }}

{{- define "smload.payloadConfigMap" -}}
{{- if .Values.payload.existingConfigMap }}
{{- .Values.payload.existingConfigMap }}
{{- else if or .Values.payload.files .Values.payload.binaryFiles }}
{{- printf "%s-payloads" (include "smload.fullname" . | trunc 54 | trimSuffix "-") }}
{{- end }}
{{- end }}

{{/* Prompts of an LLM test (synthetic or a dataset), which replace the --payload bodies. */}}
{{- define "smload.llmPrompts" -}}
{{- if or .Values.llm.promptTokens .Values.llm.dataset (hasKey .Values.options "prompt-tokens") (hasKey .Values.options "dataset") }}true{{ end }}
{{- end }}

{{- define "smload.llmConfigMap" -}}
{{- if .Values.llm.existingConfigMap }}
{{- .Values.llm.existingConfigMap }}
{{- else if .Values.llm.files }}
{{- printf "%s-llm" (include "smload.fullname" . | trunc 59 | trimSuffix "-") }}
{{- end }}
{{- end }}

{{/* The --payload path: the mounted ConfigMap (or one file of it), else the image's example; none
when the LLM prompts replace the bodies (the load generator refuses both). */}}
{{- define "smload.payloadPath" -}}
{{- if include "smload.llmPrompts" . }}
{{- else if include "smload.payloadConfigMap" . }}
{{- if .Values.payload.file }}{{ printf "/mnt/payloads/%s" .Values.payload.file }}{{ else }}/mnt/payloads{{ end }}
{{- else if .Values.payload.example }}{{ printf "/opt/smload/payloads/%s" .Values.payload.example }}
{{- end }}
{{- end }}

{{- define "smload.reportsClaim" -}}
{{- default (printf "%s-reports" (include "smload.fullname" . | trunc 55 | trimSuffix "-")) .Values.reports.persistence.existingClaim }}
{{- end }}

{{/* Pods roll when what they mount changes (the environment is part of the pod template already). */}}
{{- define "smload.checksums" -}}
checksum/payloads: {{ include (print .Template.BasePath "/configmap-payloads.yaml") . | sha256sum }}
checksum/locustfile: {{ include (print .Template.BasePath "/configmap-locustfile.yaml") . | sha256sum }}
checksum/llm: {{ include (print .Template.BasePath "/configmap-llm.yaml") . | sha256sum }}
{{- end }}

{{/*
The test's settings as Locust options, on the master only: the master sends its custom options
to the workers with every spawn message (Locust's runners.py, custom_args_from_master), so a
worker needs only the master's address, the locustfile and the files that options name.
*/}}
{{- define "smload.testEnv" -}}
{{- $e := .Values.endpoint }}
{{- $r := .Values.request }}
{{- with $e.name }}
- name: LOCUST_ENDPOINT_NAME
  value: {{ . | quote }}
{{- end }}
{{- with $e.region }}
- name: LOCUST_REGION
  value: {{ . | quote }}
{{- end }}
{{- with $e.url }}
- name: LOCUST_ENDPOINT_URL
  value: {{ . | quote }}
{{- end }}
{{- with $e.targetVariant }}
- name: LOCUST_TARGET_VARIANT
  value: {{ . | quote }}
{{- end }}
{{- with $e.targetModel }}
- name: LOCUST_TARGET_MODEL
  value: {{ . | quote }}
{{- end }}
{{- with $e.targetContainerHostname }}
- name: LOCUST_TARGET_CONTAINER_HOSTNAME
  value: {{ . | quote }}
{{- end }}
{{- with $e.inferenceComponent }}
- name: LOCUST_INFERENCE_COMPONENT
  value: {{ . | quote }}
{{- end }}
{{- with $e.customAttributes }}
- name: LOCUST_CUSTOM_ATTRIBUTES
  value: {{ . | quote }}
{{- end }}
{{- with $r.contentType }}
- name: LOCUST_CONTENT_TYPE
  value: {{ . | quote }}
{{- end }}
{{- with $r.accept }}
- name: LOCUST_ACCEPT
  value: {{ . | quote }}
{{- end }}
{{- if not (kindIs "invalid" $r.timeout) }}
- name: LOCUST_REQUEST_TIMEOUT
  value: {{ $r.timeout | toString | quote }}
{{- end }}
{{- if not (kindIs "invalid" $r.connectTimeout) }}
- name: LOCUST_CONNECT_TIMEOUT
  value: {{ $r.connectTimeout | toString | quote }}
{{- end }}
{{- with $r.client }}
- name: LOCUST_CLIENT
  value: {{ . | quote }}
{{- end }}
{{- if $r.stream }}
- name: LOCUST_STREAM
  value: "true"
{{- end }}
{{- with $r.roleArn }}
- name: LOCUST_ROLE_ARN
  value: {{ . | quote }}
{{- end }}
{{- with (include "smload.payloadPath" .) }}
- name: LOCUST_PAYLOAD
  value: {{ . | quote }}
{{- end }}
{{- with .Values.payload.order }}
- name: LOCUST_PAYLOAD_ORDER
  value: {{ . | quote }}
{{- end }}
{{- if not (kindIs "invalid" .Values.payload.seed) }}
- name: LOCUST_PAYLOAD_SEED
  value: {{ .Values.payload.seed | toString | quote }}
{{- end }}
{{- $l := .Values.llm }}
{{- with $l.api }}
- name: LOCUST_API
  value: {{ . | quote }}
{{- end }}
{{- with $l.promptTokens }}
- name: LOCUST_PROMPT_TOKENS
  value: {{ . | toString | quote }}
{{- end }}
{{- with $l.outputTokens }}
- name: LOCUST_OUTPUT_TOKENS
  value: {{ . | toString | quote }}
{{- end }}
{{- with $l.goodput }}
- name: LOCUST_GOODPUT
  value: {{ . | quote }}
{{- end }}
{{- with $l.dataset }}
- name: LOCUST_DATASET
  value: {{ printf "/mnt/llm/%s" . | quote }}
{{- end }}
{{- with $l.tokenizer }}
- name: LOCUST_TOKENIZER
  value: {{ printf "/mnt/llm/%s" . | quote }}
{{- end }}
{{- with $l.requestTemplate }}
- name: LOCUST_REQUEST_TEMPLATE
  value: {{ printf "/mnt/llm/%s" . | quote }}
{{- end }}
{{- range $flag, $value := .Values.options }}
- name: {{ printf "LOCUST_%s" ($flag | upper | replace "-" "_") }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end }}

{{/* What both roles need: the locustfile, and the SDK's region (STS for IRSA, Pod Identity). */}}
{{- define "smload.commonEnv" -}}
{{- if include "smload.customLocustfile" . }}
- name: LOCUST_LOCUSTFILE
  value: {{ printf "/mnt/locust/%s" .Values.locustfile.fileName | quote }}
{{- end }}
{{- with .Values.endpoint.region }}
- name: AWS_REGION
  value: {{ . | quote }}
{{- end }}
{{- end }}

{{/* Credentials from an existing Secret, never from values. */}}
{{- define "smload.envFrom" -}}
{{- with .Values.aws.existingSecret }}
envFrom:
  - secretRef:
      name: {{ . }}
{{- end }}
{{- end }}

{{/* Volumes of both roles: /tmp and the reports are the only writable paths (read-only root). */}}
{{- define "smload.volumes" -}}
{{- $root := index . 0 }}
{{- $role := index . 1 }}
- name: tmp
  emptyDir:
    sizeLimit: {{ $root.Values.tmpSizeLimit }}
{{- if eq $role "master" }}
- name: reports
  {{- if $root.Values.reports.persistence.enabled }}
  persistentVolumeClaim:
    claimName: {{ include "smload.reportsClaim" $root }}
  {{- else }}
  emptyDir: {}
  {{- end }}
{{- end }}
{{- with (include "smload.payloadConfigMap" $root) }}
- name: payloads
  configMap:
    name: {{ . }}
{{- end }}
{{- with (include "smload.llmConfigMap" $root) }}
- name: llm
  configMap:
    name: {{ . }}
{{- end }}
{{- if include "smload.customLocustfile" $root }}
- name: locustfile
  configMap:
    name: {{ include "smload.locustfileConfigMap" $root }}
{{- end }}
{{- end }}

{{- define "smload.volumeMounts" -}}
{{- $root := index . 0 }}
{{- $role := index . 1 }}
- name: tmp
  mountPath: /tmp
{{- if eq $role "master" }}
- name: reports
  mountPath: /var/lib/smload
{{- end }}
{{- if include "smload.payloadConfigMap" $root }}
- name: payloads
  mountPath: /mnt/payloads
  readOnly: true
{{- end }}
{{- if include "smload.llmConfigMap" $root }}
- name: llm
  mountPath: /mnt/llm
  readOnly: true
{{- end }}
{{- if include "smload.customLocustfile" $root }}
- name: locustfile
  mountPath: /mnt/locust
  readOnly: true
{{- end }}
{{- end }}

{{/* Scheduling and identity shared by both roles' pod specs: include "smload.podSpec" (list $ "worker") */}}
{{- define "smload.podSpec" -}}
{{- $root := index . 0 }}
{{- $role := index . 1 }}
{{- $values := index $root.Values $role }}
serviceAccountName: {{ include "smload.serviceAccountName" $root }}
automountServiceAccountToken: {{ $root.Values.serviceAccount.automountServiceAccountToken }}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $root.Values.podSecurityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  {{- with (include "smload.volumes" (list $root $role) | trim) }}{{ . | nindent 2 }}{{ end }}
{{- end }}
