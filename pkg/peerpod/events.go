package peerpod

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// eventSink leaves Events on pods: a peer pod's volume errors happen in the
// controller, outside any CSI call kubelet would report, so the pod's
// events are where the user sees them (kubectl describe pod).
type eventSink struct {
	kube kubernetes.Interface

	mu   sync.Mutex
	sent map[string]time.Time // pod UID, reason and message -> last sent
}

const (
	eventSource = "cinder-peerpod-attacher"
	// eventRepeat: a pass runs every few seconds; the same event for the
	// same pod is left once per eventRepeat instead of once per pass.
	eventRepeat = 10 * time.Minute
	// maxRemembered bounds the dedupe memory; it is simply dropped when
	// full (an event may then repeat once early).
	maxRemembered = 10000
)

// fresh reports whether the event was not sent within eventRepeat, and
// marks it sent.
func (s *eventSink) fresh(key string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sent == nil || len(s.sent) >= maxRemembered {
		s.sent = map[string]time.Time{}
	}
	if at, ok := s.sent[key]; ok && now.Sub(at) < eventRepeat {
		return false
	}
	s.sent[key] = now
	return true
}

func (s *eventSink) normal(ctx context.Context, p *corev1.Pod, reason, format string, args ...any) {
	s.emit(ctx, p, corev1.EventTypeNormal, reason, fmt.Sprintf(format, args...))
}

func (s *eventSink) warn(ctx context.Context, p *corev1.Pod, reason, format string, args ...any) {
	s.emit(ctx, p, corev1.EventTypeWarning, reason, fmt.Sprintf(format, args...))
}

func (s *eventSink) emit(ctx context.Context, p *corev1.Pod, typ, reason, msg string) {
	at := time.Now()
	if !s.fresh(string(p.UID)+"\x00"+reason+"\x00"+msg, at) {
		return
	}
	now := metav1.NewTime(at)
	ev := &corev1.Event{
		// Named as kubelet's recorder names events: <object>.<unique hex>.
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x", p.Name, at.UnixNano()), Namespace: p.Namespace},
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
