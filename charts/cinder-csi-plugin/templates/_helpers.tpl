{{/* Labels on every top-level object. Pod templates carry only the
selector labels (plus podLabels) so a chart upgrade never changes them. */}}
{{- define "cinder-csi.labels" -}}
app.kubernetes.io/name: cinder-csi
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "cinder-csi.controllerSelector" -}}
app.kubernetes.io/name: cinder-csi
app.kubernetes.io/component: controllerplugin
{{- end -}}

{{- define "cinder-csi.nodeSelector" -}}
app.kubernetes.io/name: cinder-csi
app.kubernetes.io/component: nodeplugin
{{- end -}}

{{/* image: repository:tag from an images.* entry; the plugin's tag
defaults to the chart appVersion. Call with (list $ .Values.images.x). */}}
{{- define "cinder-csi.image" -}}
{{- $root := index . 0 -}}
{{- $img := index . 1 -}}
{{- printf "%s:%s" $img.repository (default $root.Chart.AppVersion $img.tag) -}}
{{- end -}}

{{- define "cinder-csi.sidecarSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{- define "cinder-csi.leaderElectionProbe" -}}
httpGet:
  path: /healthz/leader-election
  port: {{ . }}
periodSeconds: 20
timeoutSeconds: 10
failureThreshold: 1
{{- end -}}

{{- define "cinder-csi.registrationPath" -}}
{{- printf "%s/plugins/cinder.csi.openstack.org/csi.sock" .Values.node.kubeletDir -}}
{{- end -}}
