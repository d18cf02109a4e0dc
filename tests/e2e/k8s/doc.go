// Package k8s is the end-to-end test of cinder-csi under a real
// Kubernetes control plane: etcd, kube-apiserver and
// kube-controller-manager, the CSI sidecars started with the arguments of
// manifests/cinder-csi-plugin, our plugin (controller and node) against the
// OpenStack emulator, and this harness in the roles of kube-scheduler's
// volume binder, node-driver-registrar and kubelet. Run it with
// `make e2e-k8s`; see tests/e2e/README.md ("## k8s").
package k8s
