package sidecarargs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// ManifestDir is the kustomize directory, relative to the repository root.
const ManifestDir = "manifests/cinder-csi-plugin"

// GroupSnapshotsDir is the overlay that turns VolumeGroupSnapshots on (the
// base plus csi-snapshotter's CSIVolumeGroupSnapshot gate), relative to
// the repository root; the k8s e2e harness runs it.
const GroupSnapshotsDir = "manifests/cinder-csi-plugin-group-snapshots"

// PeerPodDir is the peer-pod driver's kustomize directory (installed beside
// ManifestDir, whose Secret, node ConfigMap and sidecar roles it reuses),
// PeerPodController and PeerPodNode its workloads.
const (
	PeerPodDir        = "manifests/cinder-peerpod"
	PeerPodController = "csi-cinder-peerpod-controllerplugin"
	PeerPodNode       = "csi-cinder-peerpod-nodeplugin"
)

// Object is one YAML document of a manifest file.
type Object struct {
	File       string
	Index      int
	APIVersion string
	Kind       string
	Name       string
	Namespace  string
	// Data is the document as YAML (after kustomize-style namespace and
	// image changes when it came from LoadKustomization).
	Data []byte
}

func (o Object) String() string {
	return fmt.Sprintf("%s/%s (%s #%d)", o.Kind, o.Name, o.File, o.Index)
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*(#.*)?$`)

// SplitDocuments splits a multi-document YAML stream and drops documents
// holding only comments or whitespace.
func SplitDocuments(data []byte) [][]byte {
	var out [][]byte
	for _, doc := range docSeparator.Split(string(data), -1) {
		meaningful := false
		for _, line := range strings.Split(doc, "\n") {
			t := strings.TrimSpace(line)
			if t != "" && !strings.HasPrefix(t, "#") {
				meaningful = true
				break
			}
		}
		if meaningful {
			out = append(out, []byte(doc))
		}
	}
	return out
}

type header struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
}

// ParseStream turns a YAML stream into objects; every document needs
// apiVersion, kind and metadata.name.
func ParseStream(file string, data []byte) ([]Object, error) {
	var out []Object
	for i, doc := range SplitDocuments(data) {
		var h header
		if err := yaml.Unmarshal(doc, &h); err != nil {
			return nil, fmt.Errorf("%s document %d: %w", file, i, err)
		}
		if h.APIVersion == "" || h.Kind == "" || h.Metadata.Name == "" {
			return nil, fmt.Errorf("%s document %d: apiVersion, kind and metadata.name are required", file, i)
		}
		out = append(out, Object{File: file, Index: i, APIVersion: h.APIVersion, Kind: h.Kind,
			Name: h.Metadata.Name, Namespace: h.Metadata.Namespace, Data: doc})
	}
	return out, nil
}

// LoadFile parses one YAML file.
func LoadFile(path string) ([]Object, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseStream(path, data)
}

// YAMLFiles lists the .yaml/.yml files under dir, recursively, sorted,
// without kustomization files.
func YAMLFiles(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		ext := filepath.Ext(path)
		if d.IsDir() || (ext != ".yaml" && ext != ".yml") || d.Name() == "kustomization.yaml" {
			return nil
		}
		files = append(files, path)
		return nil
	})
	slices.Sort(files)
	return files, err
}

// kustomization is the subset of kustomize's schema our directory uses;
// decoding is strict so a new field (patches, ...) fails loudly here
// instead of being silently ignored by this loader.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
	} `json:"images"`
	Patches []kustomizePatch `json:"patches"`
}

// clusterScoped kinds keep no namespace under kustomize's namespace field.
var clusterScoped = []string{"ClusterRole", "ClusterRoleBinding", "CSIDriver", "StorageClass",
	"PriorityClass", "VolumeSnapshotClass", "RuntimeClass", "Namespace", "PersistentVolume"}

// LoadKustomization reads dir/kustomization.yaml and returns its
// resources with the namespace and image overrides applied, as
// `kubectl kustomize` would (for the fields this repository uses).
func LoadKustomization(dir string) ([]Object, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		return nil, err
	}
	var k kustomization
	if err := yaml.UnmarshalStrict(raw, &k); err != nil {
		return nil, fmt.Errorf("%s/kustomization.yaml: %w", dir, err)
	}
	var out []Object
	for _, r := range k.Resources {
		objs, err := loadResource(filepath.Join(dir, r))
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			var m map[string]any
			if err := yaml.Unmarshal(o.Data, &m); err != nil {
				return nil, fmt.Errorf("%s: %w", o, err)
			}
			for _, p := range k.Patches {
				if !p.matches(o) {
					continue
				}
				if err := p.apply(m); err != nil {
					return nil, fmt.Errorf("%s/kustomization.yaml: %w", dir, err)
				}
			}
			if k.Namespace != "" && !slices.Contains(clusterScoped, o.Kind) {
				m["metadata"].(map[string]any)["namespace"] = k.Namespace
				o.Namespace = k.Namespace
			}
			for _, img := range k.Images {
				rewriteImages(m, img.Name, img.NewName, img.NewTag)
			}
			if o.Data, err = yaml.Marshal(m); err != nil {
				return nil, err
			}
			out = append(out, o)
		}
	}
	return out, nil
}

// loadResource reads a kustomization resource: a YAML file, or a
// directory with its own kustomization (a base of an overlay).
func loadResource(path string) ([]Object, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return LoadKustomization(path)
	}
	return LoadFile(path)
}

// rewriteImages applies one kustomize `images` entry to every container.
func rewriteImages(node any, name, newName, newTag string) {
	switch n := node.(type) {
	case map[string]any:
		for key, v := range n {
			if (key == "containers" || key == "initContainers") && v != nil {
				for _, c := range v.([]any) {
					cm := c.(map[string]any)
					image, _ := cm["image"].(string)
					repo, tag := splitImage(image)
					if repo != name {
						continue
					}
					if newName != "" {
						repo = newName
					}
					if newTag != "" {
						tag = newTag
					}
					cm["image"] = repo + ":" + tag
				}
				continue
			}
			rewriteImages(v, name, newName, newTag)
		}
	case []any:
		for _, v := range n {
			rewriteImages(v, name, newName, newTag)
		}
	}
}

// splitImage splits repository[:tag]; a port in the registry host is not a tag.
func splitImage(image string) (repo, tag string) {
	i := strings.LastIndex(image, ":")
	if i < 0 || strings.Contains(image[i:], "/") {
		return image, ""
	}
	return image[:i], image[i+1:]
}

// SplitImage splits an image reference into repository and tag.
func SplitImage(image string) (repo, tag string) { return splitImage(image) }

// RepoRoot finds the repository root (the directory holding go.mod) from
// the working directory upwards.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// Find returns the single object of that kind and name.
func Find(objs []Object, kind, name string) (Object, error) {
	var found []Object
	for _, o := range objs {
		if o.Kind == kind && o.Name == name {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		return Object{}, fmt.Errorf("want exactly one %s/%s, found %d", kind, name, len(found))
	}
	return found[0], nil
}

// Controller is the name of the controller Deployment, Node that of the
// node DaemonSet.
const (
	Controller = "csi-cinder-controllerplugin"
	Node       = "csi-cinder-nodeplugin"
)

// The Manila driver's kustomize directory (relative to the repository
// root), controller Deployment and node DaemonSet.
const (
	ManilaManifestDir = "manifests/manila-csi-plugin"
	ManilaController  = "csi-manila-controllerplugin"
	ManilaNode        = "csi-manila-nodeplugin"
)

// PodSpecs returns the controller Deployment's and the node DaemonSet's
// pod specs from the kustomize directory under root.
func PodSpecs(root string) (controller, node *corev1.PodSpec, err error) {
	return PodSpecsOf(filepath.Join(root, ManifestDir))
}

// PodSpecsOf is PodSpecs for the kustomize directory dir (an overlay).
func PodSpecsOf(dir string) (controller, node *corev1.PodSpec, err error) {
	objs, err := LoadKustomization(dir)
	if err != nil {
		return nil, nil, err
	}
	return PodSpecsFrom(objs)
}

// PodSpecsFrom is PodSpecs over already loaded objects (e.g. a Helm render).
func PodSpecsFrom(objs []Object) (controller, node *corev1.PodSpec, err error) {
	return PodSpecsNamed(objs, Controller, Node)
}

// PodSpecsNamed returns the pod specs of the Deployment controllerName and
// the DaemonSet nodeName among objs (Manila's workloads, say).
func PodSpecsNamed(objs []Object, controllerName, nodeName string) (controller, node *corev1.PodSpec, err error) {
	d, err := Find(objs, "Deployment", controllerName)
	if err != nil {
		return nil, nil, err
	}
	var dep appsv1.Deployment
	if err := yaml.UnmarshalStrict(d.Data, &dep); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", d, err)
	}
	n, err := Find(objs, "DaemonSet", nodeName)
	if err != nil {
		return nil, nil, err
	}
	var ds appsv1.DaemonSet
	if err := yaml.UnmarshalStrict(n.Data, &ds); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", n, err)
	}
	return &dep.Spec.Template.Spec, &ds.Spec.Template.Spec, nil
}

// ContainerArgs maps container name to args for one pod spec.
func ContainerArgs(spec *corev1.PodSpec) map[string][]string {
	out := map[string][]string{}
	for _, c := range spec.Containers {
		out[c.Name] = slices.Clone(c.Args)
	}
	return out
}

// SidecarArgs returns, for each sidecar container in the manifests under
// root (controller and node), its args exactly as deployed, keyed by
// container name with a "controller/" or "node/" prefix, e.g.
// "controller/csi-provisioner". The k8s e2e harness starts each sidecar
// with these (through Override for socket, kubeconfig and ports).
func SidecarArgs(root string) (map[string][]string, error) {
	return WorkloadArgs(filepath.Join(root, ManifestDir), Controller, Node)
}

// WorkloadArgs is SidecarArgs for the kustomize directory dir (an overlay,
// or another driver's) whose controller Deployment and node DaemonSet have
// the given names.
func WorkloadArgs(dir, controllerName, nodeName string) (map[string][]string, error) {
	objs, err := LoadKustomization(dir)
	if err != nil {
		return nil, err
	}
	c, n, err := PodSpecsNamed(objs, controllerName, nodeName)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for prefix, spec := range map[string]*corev1.PodSpec{"controller/": c, "node/": n} {
		for name, args := range ContainerArgs(spec) {
			out[prefix+name] = args
		}
	}
	return out, nil
}

// Normalize re-encodes YAML so two documents compare equal when they hold
// the same data (key order, quoting and comments do not matter).
func Normalize(doc []byte) ([]byte, error) {
	var m any
	if err := yaml.Unmarshal(doc, &m); err != nil {
		return nil, err
	}
	out, err := yaml.Marshal(m)
	return bytes.TrimSpace(out), err
}
