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

{{/* repository:tag, or repository:tag@digest with image.digest (the digest is what is pulled). */}}
{{- define "ecr-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- with .Values.image.digest }}@{{ . }}{{ end }}
{{- end }}

{{/* "generated" when neither cert-manager nor a caBundle provides the webhook's CA: the operator then generates the certificate and writes its CA into the ValidatingWebhookConfiguration. "none" without a webhook. */}}
{{- define "ecr-operator.webhookCertificate" -}}
{{- if not .Values.webhook.enabled }}none{{ else if or .Values.webhook.certManager.enabled .Values.webhook.caBundle }}files{{ else }}generated{{ end }}
{{- end }}

{{/* cert-manager mode: the serving Certificate (named by the webhook configuration's
cert-manager.io/inject-ca-from), and without webhook.certManager.issuerRef the self-signed root
Issuer, and the CA Certificate, its Secret and the CA Issuer (all three one name). */}}
{{- define "ecr-operator.servingCertificateName" -}}
{{- printf "%s-webhook" (include "ecr-operator.fullname" .) }}
{{- end }}

{{- define "ecr-operator.selfSignedIssuerName" -}}
{{- printf "%s-selfsigned" (include "ecr-operator.fullname" .) }}
{{- end }}

{{- define "ecr-operator.caName" -}}
{{- printf "%s-ca" (include "ecr-operator.fullname" .) }}
{{- end }}

{{/* The webhook's DNS names: those of the Service, for a generated or cert-manager certificate. */}}
{{- define "ecr-operator.webhookDnsNames" -}}
{{ include "ecr-operator.fullname" . }}.{{ .Release.Namespace }}.svc,{{ include "ecr-operator.fullname" . }}.{{ .Release.Namespace }}.svc.cluster.local
{{- end }}

{{/* The PodDisruptionBudget's one field: minAvailable when set, else maxUnavailable; fails on a
minAvailable that leaves no pod evictable at replicaCount (every drain would block). */}}
{{- define "ecr-operator.pdbSpec" -}}
{{- $pdb := .Values.podDisruptionBudget }}
{{- $replicas := int .Values.replicaCount }}
{{- if not (eq (toString $pdb.minAvailable) "") }}
{{- $min := 0 }}
{{- if kindIs "string" $pdb.minAvailable }}
{{- $min = int (ceil (divf (mulf $replicas (trimSuffix "%" $pdb.minAvailable | float64)) 100)) }}
{{- else }}
{{- $min = int $pdb.minAvailable }}
{{- end }}
{{- if ge $min $replicas }}
{{- fail (printf "podDisruptionBudget.minAvailable %v at replicaCount %d lets no pod be evicted: every node drain would block. Set minAvailable \"\" (maxUnavailable applies), a lower minAvailable or more replicas" $pdb.minAvailable $replicas) }}
{{- end }}
minAvailable: {{ $pdb.minAvailable }}
{{- else if not (eq (toString $pdb.maxUnavailable) "") }}
maxUnavailable: {{ $pdb.maxUnavailable }}
{{- else }}
{{- fail "podDisruptionBudget: set maxUnavailable or minAvailable" }}
{{- end }}
{{- end }}

{{/* The IAM policy the operator's role needs: files/iam-policy.json (an exact copy of the
repository's config/iam/policy.json, which is written for partition aws) in aws.partition. In
aws-cn, AWS service hosts end in amazonaws.com.cn, which the KMS condition (kms:ViaService)
names. Fails when the IRSA role ARN is of another partition: a role and its policy share one. */}}
{{- define "ecr-operator.iamPolicy" -}}
{{- include "ecr-operator.checkPartition" . }}
{{- $partition := include "ecr-operator.partition" . }}
{{- $policy := .Files.Get "files/iam-policy.json" | replace "\"arn:aws:" (printf "\"arn:%s:" $partition) }}
{{- if eq $partition "aws-cn" }}
{{- $policy = $policy | replace ".amazonaws.com\"" ".amazonaws.com.cn\"" }}
{{- end }}
{{- $policy | trim }}
{{- end }}

{{/* Nothing, or a failure when the IRSA role ARN is not in aws.partition. Included by the
ServiceAccount too: Helm renders no NOTES for a subchart. */}}
{{- define "ecr-operator.checkPartition" -}}
{{- $partition := include "ecr-operator.partition" . }}
{{- $role := index .Values.serviceAccount.annotations "eks.amazonaws.com/role-arn" | default "" }}
{{- if and $role (not (hasPrefix (printf "arn:%s:" $partition) $role)) }}
{{- fail (printf "serviceAccount.annotations.eks.amazonaws.com/role-arn %s is not in partition %s (aws.partition): set aws.partition to the role's partition" $role $partition) }}
{{- end }}
{{- end }}

{{/* aws.partition; aws when unset (aws: null or partition: null remove the chart's default). */}}
{{- define "ecr-operator.partition" -}}
{{- default "aws" (dig "partition" "" (.Values.aws | default dict)) }}
{{- end }}
