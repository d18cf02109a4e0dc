{{- define "manila-csi.pluginImage" -}}
{{- printf "%s:%s" .Values.images.plugin.repository (default .Chart.AppVersion .Values.images.plugin.tag) -}}
{{- end -}}
