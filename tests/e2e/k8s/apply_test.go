package k8s

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/cinder-csi/cinder-csi/tests/manifests/sidecarargs"
)

// fieldManager names this harness in managedFields of what it applies.
const fieldManager = "cinder-csi-e2e"

// applier does server-side apply of YAML documents through the dynamic
// client, the way `kubectl apply --server-side` does.
type applier struct {
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

func newApplier(cp *controlPlane) (*applier, error) {
	dyn, err := dynamic.NewForConfig(cp.config)
	if err != nil {
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cp.config)
	if err != nil {
		return nil, err
	}
	return &applier{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}, nil
}

// decode turns a YAML stream into objects.
func decode(data []byte) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for i, doc := range sidecarargs.SplitDocuments(data) {
		js, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(js); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		out = append(out, u)
	}
	return out, nil
}

func decodeFile(path string) ([]*unstructured.Unstructured, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	objs, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return objs, nil
}

// resource maps an object to its dynamic client, defaulting the namespace
// of namespaced kinds to ns.
func (a *applier) resource(u *unstructured.Unstructured, ns string) (dynamic.ResourceInterface, error) {
	gvk := u.GroupVersionKind()
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", gvk, u.GetName(), err)
	}
	if m.Scope.Name() != meta.RESTScopeNameNamespace {
		return a.dyn.Resource(m.Resource), nil
	}
	if u.GetNamespace() == "" {
		u.SetNamespace(ns)
	}
	return a.dyn.Resource(m.Resource).Namespace(u.GetNamespace()), nil
}

// apply server-side applies each object; dryRun asks the apiserver to run
// admission and schema validation without persisting anything.
func (a *applier) apply(ctx context.Context, ns string, dryRun bool, objs ...*unstructured.Unstructured) error {
	_, err := a.applyObjects(ctx, ns, dryRun, objs...)
	return err
}

// applyObjects is apply returning the objects as the apiserver stored them.
func (a *applier) applyObjects(ctx context.Context, ns string, dryRun bool, objs ...*unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, u := range objs {
		ri, err := a.resource(u, ns)
		if err != nil {
			return nil, err
		}
		opts := metav1.ApplyOptions{FieldManager: fieldManager, Force: true}
		if dryRun {
			opts.DryRun = []string{metav1.DryRunAll}
		}
		got, err := ri.Apply(ctx, u.GetName(), u, opts)
		if err != nil {
			return nil, fmt.Errorf("apply %s %s: %w", u.GetKind(), u.GetName(), err)
		}
		out = append(out, got)
	}
	return out, nil
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// applyCRDs applies the VolumeSnapshot CRDs build.sh extracted from
// external-snapshotter/client and waits until each is Established.
func applyCRDs(ctx context.Context, cp *controlPlane, crdDir string) error {
	a, err := newApplier(cp)
	if err != nil {
		return err
	}
	files, _ := filepath.Glob(filepath.Join(crdDir, "*.yaml"))
	if len(files) == 0 {
		return fmt.Errorf("no CRDs in %s (build.sh extracts them)", crdDir)
	}
	var names []string
	for _, f := range files {
		objs, err := decodeFile(f)
		if err != nil {
			return err
		}
		if err := a.apply(ctx, "", false, objs...); err != nil {
			return err
		}
		for _, o := range objs {
			names = append(names, o.GetName())
		}
	}
	for _, n := range names {
		if err := poll(ctx, 60*time.Second, "CRD "+n+" Established", func(ctx context.Context) (bool, error) {
			u, err := a.dyn.Resource(crdGVR).Get(ctx, n, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			for _, c := range conds {
				cm, _ := c.(map[string]any)
				if cm["type"] == "Established" && cm["status"] == "True" {
					return true, nil
				}
			}
			return false, nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// dryRunManifests applies every object of the kustomize directory dir (as
// LoadKustomization renders it) with server-side dry-run: the real
// apiserver validates each against its schema and admission.
func dryRunManifests(ctx context.Context, a *applier, dir string) (int, error) {
	objs, err := sidecarargs.LoadKustomization(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	var failed []string
	for _, o := range objs {
		us, err := decode(o.Data)
		if err != nil {
			return n, fmt.Errorf("%s: %w", o, err)
		}
		if err := a.apply(ctx, "kube-system", true, us...); err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", o, err))
			continue
		}
		n += len(us)
	}
	if len(failed) > 0 {
		return n, fmt.Errorf("server-side dry-run rejected:\n  %s", strings.Join(failed, "\n  "))
	}
	return n, nil
}
