package kubeclient

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// clock is a settable time for the cache's TTL.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func pvc(ns, name string, ann map[string]string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: ann}}
}

// countGets counts the PVC GETs the fake API server answers.
func countGets(client *fake.Clientset) *int {
	n := new(int)
	client.PrependReactor("get", "persistentvolumeclaims", func(k8stesting.Action) (bool, runtime.Object, error) {
		*n++
		return false, nil, nil
	})
	return n
}

func TestPVCLookupCachesForTheTTLThenReadsAgain(t *testing.T) {
	ctx := context.Background()
	client := fake.NewSimpleClientset(pvc("ns", "data", map[string]string{"a": "1"}))
	gets := countGets(client)
	clk := &clock{t: time.Unix(1000, 0)}
	l := NewPVCLookup(client)
	l.now = clk.now

	for range 3 {
		got, err := l.Annotations(ctx, "ns", "data")
		if err != nil || !maps.Equal(got, map[string]string{"a": "1"}) {
			t.Fatalf("Annotations = %v, %v", got, err)
		}
	}
	if *gets != 1 {
		t.Fatalf("%d GETs within the TTL, want 1", *gets)
	}

	// A changed annotation is seen once the entry has expired.
	if _, err := client.CoreV1().PersistentVolumeClaims("ns").Update(ctx, pvc("ns", "data", map[string]string{"a": "2"}), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	clk.t = clk.t.Add(pvcAnnotationTTL)
	got, err := l.Annotations(ctx, "ns", "data")
	if err != nil || got["a"] != "2" || *gets != 2 {
		t.Fatalf("after the TTL: %v, %v, %d GETs", got, err, *gets)
	}
}

func TestPVCLookupDropsExpiredEntries(t *testing.T) {
	ctx := context.Background()
	var objs []runtime.Object
	for i := range 10 {
		objs = append(objs, pvc("ns", fmt.Sprintf("pvc-%d", i), nil))
	}
	client := fake.NewSimpleClientset(objs...)
	clk := &clock{t: time.Unix(1000, 0)}
	l := NewPVCLookup(client)
	l.now = clk.now
	for i := range 9 {
		if _, err := l.Annotations(ctx, "ns", fmt.Sprintf("pvc-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := l.cached(); n != 9 {
		t.Fatalf("%d entries cached, want 9", n)
	}
	clk.t = clk.t.Add(pvcAnnotationTTL + time.Second)
	if _, err := l.Annotations(ctx, "ns", "pvc-9"); err != nil {
		t.Fatal(err)
	}
	if n := l.cached(); n != 1 {
		t.Fatalf("%d entries cached after the others expired, want only the new one", n)
	}
}

func TestPVCLookupNeverHoldsMoreThanTheCap(t *testing.T) {
	client := fake.NewSimpleClientset()
	clk := &clock{t: time.Unix(1000, 0)}
	l := NewPVCLookup(client)
	l.now = clk.now
	for i := range maxCachedPVCs + 10 {
		l.store(fmt.Sprintf("ns/pvc-%d", i), nil)
	}
	if n := l.cached(); n != maxCachedPVCs {
		t.Fatalf("%d entries cached, cap %d", n, maxCachedPVCs)
	}
}

func TestPVCLookupDoesNotCacheErrors(t *testing.T) {
	client := fake.NewSimpleClientset()
	l := NewPVCLookup(client)
	if _, err := l.Annotations(context.Background(), "ns", "missing"); err == nil {
		t.Fatal("no error for a missing PVC")
	}
	if n := l.cached(); n != 0 {
		t.Fatalf("%d entries cached after an error", n)
	}
}
