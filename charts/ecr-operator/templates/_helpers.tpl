{{/* Chart name, or nameOverride. */}}
{{- define "ecr-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: fullnameOverride, else the release name when it contains the chart name, else release-chart. */}}
{{- define "ecr-operator.fullname" -}}
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

{{- define "ecr-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ecr-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ecr-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ecr-operator.labels" -}}
{{ include "ecr-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ include "ecr-operator.chart" . }}
{{- end }}

{{- define "ecr-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ecr-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "ecr-operator.tlsSecretName" -}}
{{- default (printf "%s-webhook-tls" (include "ecr-operator.fullname" .)) .Values.webhook.tlsSecretName }}
{{- end }}

{{/* The Secret holding the operator-generated webhook certificate. */}}
{{- define "ecr-operator.generatedSecretName" -}}
{{- printf "%s-webhook-generated" (include "ecr-operator.fullname" .) }}
{{- end }}

{{- define "ecr-operator.leaseName" -}}
{{- default (include "ecr-operator.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{- define "ecr-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* "generated" when neither cert-manager nor a caBundle provides the webhook's CA: the operator then generates the certificate and writes its CA into the ValidatingWebhookConfiguration. */}}
{{- define "ecr-operator.webhookCertificate" -}}
{{- if or .Values.webhook.certManager.enabled .Values.webhook.caBundle }}files{{ else }}generated{{ end }}
{{- end }}
