{{/* Names, labels and shared fragments. */}}

{{- define "tinyforge.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release full name; component names append "-<component>", so keep room (<= 40 chars). */}}
{{- define "tinyforge.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "tinyforge.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "tinyforge.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tinyforge
{{- end -}}

{{/* Selector labels of one component: call with (dict "root" $ "component" "api"). */}}
{{- define "tinyforge.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tinyforge.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "tinyforge.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- /* The image of service "name": the builder image for the builder, else the platform's. */}}
{{- define "tinyforge.serviceImage" -}}
{{- $b := .root.Values.builderImages.builder -}}
{{- if and (eq .name "builder") $b.repository -}}
{{- printf "%s:%s" $b.repository (default .root.Chart.AppVersion $b.tag) -}}
{{- else -}}
{{- include "tinyforge.image" .root -}}
{{- end -}}
{{- end -}}

{{- define "tinyforge.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "tinyforge.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "tinyforge.workflowServiceAccountName" -}}
{{- default (printf "%s-workflow" (include "tinyforge.fullname" .)) .Values.argo.workflowServiceAccount.name -}}
{{- end -}}

{{- define "tinyforge.minioSecretName" -}}
{{- default (printf "%s-minio" (include "tinyforge.fullname" .)) .Values.objectStore.minio.existingSecret -}}
{{- end -}}

{{- define "tinyforge.postgresqlSecretName" -}}
{{- default (printf "%s-postgresql" (include "tinyforge.fullname" .)) .Values.database.postgresql.existingSecret -}}
{{- end -}}

{{/* Reuse a generated secret value across upgrades (lookup), else a new random one. */}}
{{- define "tinyforge.stableRandom" -}}
{{- $existing := lookup "v1" "Secret" .root.Release.Namespace .secret -}}
{{- if and $existing (hasKey $existing.data .key) -}}
{{- index $existing.data .key | b64dec -}}
{{- else -}}
{{- randAlphaNum 32 -}}
{{- end -}}
{{- end -}}

{{/* Environment shared by every service container (besides the ConfigMap). */}}
{{- define "tinyforge.secretEnv" -}}
{{- if eq .Values.database.mode "postgresql" }}
{{- $p := .Values.database.postgresql }}
- name: TINYFORGE_DB_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "tinyforge.postgresqlSecretName" . }}
      key: password
{{- /* Kubernetes expands $(VAR) from earlier entries; the password must be URL-safe. */}}
- name: TINYFORGE_DATABASE_URL
  value: {{ printf "postgresql+psycopg://%s:$(TINYFORGE_DB_PASSWORD)@%s-postgresql:5432/%s" $p.username (include "tinyforge.fullname" .) $p.database | quote }}
{{- else }}
- name: TINYFORGE_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ required "database.external.existingSecret is required when database.mode=external" .Values.database.external.existingSecret }}
      key: {{ .Values.database.external.urlKey }}
{{- end }}
{{- if eq .Values.objectStore.mode "minio" }}
- name: TINYFORGE_S3_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "tinyforge.minioSecretName" . }}
      key: rootUser
- name: TINYFORGE_S3_SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "tinyforge.minioSecretName" . }}
      key: rootPassword
{{- else }}
- name: TINYFORGE_S3_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ required "objectStore.external.existingSecret is required when objectStore.mode=external" .Values.objectStore.external.existingSecret }}
      key: {{ .Values.objectStore.external.accessKeyKey }}
- name: TINYFORGE_S3_SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.objectStore.external.existingSecret }}
      key: {{ .Values.objectStore.external.secretKeyKey }}
{{- end }}
{{- end -}}

{{/* OTEL_RESOURCE_ATTRIBUTES for one service: call with (dict "root" $ "name" "api"). */}}
{{- define "tinyforge.otelResourceAttributes" -}}
{{- $attrs := list "k8s.pod.name=$(POD_NAME)" (printf "service.namespace=%s" .root.Release.Namespace) (printf "service.version=%s" .root.Chart.AppVersion) (printf "tinyforge.release=%s" .root.Release.Name) -}}
{{- range $k, $v := .root.Values.otel.resourceAttributes -}}
{{- $attrs = append $attrs (printf "%s=%s" $k $v) -}}
{{- end -}}
{{- join "," $attrs -}}
{{- end -}}

{{/* ServiceAccount of KServe predictor pods (S3 access for the storage initializer). */}}
{{- define "tinyforge.predictorServiceAccountName" -}}
{{- if .Values.kserve.storageServiceAccount -}}
{{- .Values.kserve.storageServiceAccount -}}
{{- else if and (eq .Values.objectStore.mode "minio") (not .Values.objectStore.minio.existingSecret) -}}
{{- printf "%s-predictor" (include "tinyforge.fullname" .) -}}
{{- end -}}
{{- end -}}
