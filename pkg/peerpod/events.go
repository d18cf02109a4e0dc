package peerpod

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// eventSink leaves Events on pods: a peer pod's volume errors happen in the
// controller, outside any CSI call kubelet would report, so the pod's
// events are where the user sees them (kubectl describe pod).
type eventSink struct{ kube kubernetes.Interface }

const eventSource = "cinder-peerpod-attacher"

func (s *eventSink) normal(ctx context.Context, p *corev1.Pod, reason, format string, args ...any) {
	s.emit(ctx, p, corev1.EventTypeNormal, reason, fmt.Sprintf(format, args...))
}

func (s *eventSink) warn(ctx context.Context, p *corev1.Pod, reason, format string, args ...any) {
	s.emit(ctx, p, corev1.EventTypeWarning, reason, fmt.Sprintf(format, args...))
}

func (s *eventSink) emit(ctx context.Context, p *corev1.Pod, typ, reason, msg string) {
	now := metav1.NewTime(time.Now())
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: p.Name + ".", Namespace: p.Namespace},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: p.Namespace, Name: p.Name,
			UID: p.UID, APIVersion: "v1"},
		Reason: reason, Message: msg, Type: typ,
		Source:         corev1.EventSource{Component: eventSource},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
	}
	if _, err := s.kube.CoreV1().Events(p.Namespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		klog.ErrorS(err, "Recording pod event", "pod", p.Namespace+"/"+p.Name, "reason", reason)
	}
}
