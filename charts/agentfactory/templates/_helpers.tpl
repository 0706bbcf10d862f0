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

{{/* NATS authentication and TLS -------------------------------------------------------------------
     Each client (gateway, operator, patterns) connects as its own NATS user; the bundled server
     allows each only the subjects it needs (files/nats/authorization.conf, generated from
     core/nats-auth.ts). Passwords live in one Secret, given (nats.auth.existingSecret) or generated. */}}

{{- define "agentfactory.natsClients" -}}
gateway operator patterns egress
{{- end }}

{{- define "agentfactory.natsAuthSecret" -}}
{{- if .Values.nats.auth.existingSecret }}
{{- .Values.nats.auth.existingSecret }}
{{- else if not .Values.nats.enabled }}
{{- fail "nats.auth.existingSecret is required with an external NATS (nats.enabled=false): the chart cannot set that server's users. Or set nats.auth.enabled=false." }}
{{- else }}
{{- include "agentfactory.componentName" (dict "root" . "component" "nats-auth") }}
{{- end }}
{{- end }}

{{- define "agentfactory.natsCaSecret" -}}
{{- $tls := .Values.nats.tls }}
{{- if $tls.caSecretName }}
{{- $tls.caSecretName }}
{{- else if .Values.nats.enabled }}
{{- required "nats.tls.secretName is required when nats.tls.enabled=true (a kubernetes.io/tls Secret with tls.crt, tls.key and ca.crt)" $tls.secretName }}
{{- else }}
{{- fail "nats.tls.caSecretName is required when nats.tls.enabled=true with an external NATS: the CA the clients trust" }}
{{- end }}
{{- end }}

{{/* NATS_URL, and per the values the client's user, password (secretKeyRef) and CA file.
     Call with (dict "root" . "client" "gateway"). */}}
{{- define "agentfactory.natsClientEnv" -}}
- name: NATS_URL
  value: {{ include "agentfactory.natsUrl" .root | quote }}
{{- if .root.Values.nats.auth.enabled }}
- name: NATS_USER
  value: {{ .client | quote }}
{{ include "agentfactory.secretEnv" (dict "name" "NATS_PASSWORD" "secret" (include "agentfactory.natsAuthSecret" .root) "key" (printf "%s-password" .client)) }}
{{- end }}
{{- if .root.Values.nats.tls.enabled }}
- name: NATS_TLS_CA_FILE
  value: /etc/agentfactory/nats-ca/{{ .root.Values.nats.tls.caKey }}
{{- end }}
{{- end }}

{{- define "agentfactory.natsCaVolumeMount" -}}
{{- if .Values.nats.tls.enabled }}
- name: nats-ca
  mountPath: /etc/agentfactory/nats-ca
  readOnly: true
{{- end }}
{{- end }}

{{- define "agentfactory.natsCaVolume" -}}
{{- if .Values.nats.tls.enabled }}
- name: nats-ca
  secret:
    secretName: {{ include "agentfactory.natsCaSecret" . }}
    items:
      - key: {{ .Values.nats.tls.caKey }}
        path: {{ .Values.nats.tls.caKey }}
{{- end }}
{{- end }}

{{- /* The names of a list of imagePullSecrets ({name: ...}), comma-separated (the operator's RUNNER_IMAGE_PULL_SECRETS). */ -}}
{{- define "agentfactory.pullSecretNames" -}}
{{- $names := list }}
{{- range . }}{{- $names = append $names .name }}{{- end }}
{{- join "," $names }}
{{- end }}
