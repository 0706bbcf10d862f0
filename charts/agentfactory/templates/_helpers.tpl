{{/* Names ------------------------------------------------------------------------------------ */}}

{{- define "agentfactory.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "agentfactory.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* A component's object name: <fullname>-<component>, 63 characters at most. */}}
{{- define "agentfactory.componentName" -}}
{{- printf "%s-%s" (include "agentfactory.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "agentfactory.runsNamespace" -}}
{{- default .Release.Namespace .Values.runs.namespace }}
{{- end }}

{{- define "agentfactory.natsUrl" -}}
{{- if .Values.nats.enabled }}
{{- printf "nats://%s.%s.svc:4222" (include "agentfactory.componentName" (dict "root" . "component" "nats")) .Release.Namespace }}
{{- else }}
{{- required "nats.url is required when nats.enabled=false" .Values.nats.url }}
{{- end }}
{{- end }}

{{/* Labels ----------------------------------------------------------------------------------- */}}

{{- define "agentfactory.selectorLabels" -}}
app.kubernetes.io/name: {{ include "agentfactory.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "agentfactory.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "agentfactory.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: agentfactory
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Images ----------------------------------------------------------------------------------- */}}

{{- define "agentfactory.imageRef" -}}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) }}
{{- end }}
{{- end }}

{{/* Pod Security "restricted" -------------------------------------------------------------------
     Every pod of the chart (and every runner pod the operator creates) runs as non-root with the
     RuntimeDefault seccomp profile, no privilege escalation, all capabilities dropped and a
     read-only root filesystem. */}}

{{- define "agentfactory.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "agentfactory.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Secrets by reference ------------------------------------------------------------------------ */}}

{{- define "agentfactory.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ .key }}
      {{- if .optional }}
      optional: true
      {{- end }}
{{- end }}

{{- define "agentfactory.githubAppSecret" -}}
{{- required "secrets.githubApp.existingSecret is required (a Secret with the GitHub App id and private key)" .Values.secrets.githubApp.existingSecret }}
{{- end }}

{{- define "agentfactory.modelSecret" -}}
{{- required "secrets.model.existingSecret is required (a Secret with the model API key, in the runs namespace)" .Values.secrets.model.existingSecret }}
{{- end }}

{{- define "agentfactory.webhooksSecret" -}}
{{- required "secrets.webhooks.existingSecret is required (a Secret with the GitHub webhook secret)" .Values.secrets.webhooks.existingSecret }}
{{- end }}

{{/* NetworkPolicy pieces -------------------------------------------------------------------------- */}}

{{- define "agentfactory.egressDns" -}}
- ports:
    - { protocol: UDP, port: 53 }
    - { protocol: TCP, port: 53 }
{{- end }}

{{- define "agentfactory.egressNats" -}}
- ports:
    - { protocol: TCP, port: 4222 }
  {{- if .Values.nats.enabled }}
  to:
    - podSelector:
        matchLabels:
          {{- include "agentfactory.selectorLabels" (dict "root" . "component" "nats") | nindent 10 }}
  {{- end }}
{{- end }}

{{- define "agentfactory.ingressMetrics" -}}
- ports:
    - { protocol: TCP, port: {{ .port }} }
  {{- with .root.Values.networkPolicy.metricsFrom }}
  from:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
