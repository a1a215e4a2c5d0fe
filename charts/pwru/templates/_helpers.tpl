{{/* Labels on every object. app.kubernetes.io/name of the agent pods is what
     kubectl pwru selects (--agent-selector app.kubernetes.io/name=pwru-agent). */}}
{{- define "pwru.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/part-of: pwru
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "pwru.agentSelector" -}}
app.kubernetes.io/name: pwru-agent
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The CRI socket on the node, from the runtime preset. */}}
{{- define "pwru.criSocket" -}}
{{- $presets := dict "containerd" "/run/containerd/containerd.sock" "k3s" "/run/k3s/containerd/containerd.sock" "k0s" "/run/k0s/containerd.sock" "crio" "/var/run/crio/crio.sock" -}}
{{- if eq .Values.cri.runtime "custom" -}}
{{- required "cri.runtime is custom: set cri.socket to the CRI socket's path on the nodes" .Values.cri.socket -}}
{{- else -}}
{{- get $presets .Values.cri.runtime -}}
{{- end -}}
{{- end }}

{{/* DNS names in the server certificate, comma-separated: the name kubectl
     pwru checks, then the Service's. */}}
{{- define "pwru.serverDNSNames" -}}
{{- $svc := printf "pwru-agent.%s.svc" .Release.Namespace -}}
{{- list .Values.tls.serverName "pwru-agent" $svc (printf "%s.%s" $svc .Values.clusterDomain) | uniq | join "," -}}
{{- end }}

{{- define "pwru.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end }}

{{/* securityContext.appArmorProfile as the annotation Kubernetes before 1.30
     reads (container.apparmor.security.beta.kubernetes.io/CONTAINER). */}}
{{- define "pwru.appArmorAnnotation" -}}
{{- if eq .type "Unconfined" -}}
unconfined
{{- else if eq .type "RuntimeDefault" -}}
runtime/default
{{- else if eq .type "Localhost" -}}
localhost/{{ required "securityContext.appArmorProfile.localhostProfile: set it with type Localhost" .localhostProfile }}
{{- else -}}
{{- fail (printf "securityContext.appArmorProfile.type %v: use Unconfined, RuntimeDefault or Localhost" .type) -}}
{{- end -}}
{{- end }}
