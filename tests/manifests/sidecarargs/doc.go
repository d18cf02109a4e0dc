// Package sidecarargs reads the deployment manifests
// (manifests/cinder-csi-plugin) the way `kubectl kustomize` builds them and
// knows each pinned sidecar's command line at its version. Tests use it to
// check the manifests and the Helm chart; the k8s e2e harness uses it to
// start every sidecar with the arguments deployed in production:
//
//	all, err := sidecarargs.SidecarArgs(root) // "controller/csi-provisioner" -> args
//	args := sidecarargs.ForHarness(all["controller/csi-provisioner"], sock, kubeconfig)
//	sc, _ := sidecarargs.ByContainer("csi-provisioner")
//	err = sc.Validate(args)
//
// It is test-only: nothing in cmd/ or pkg/ imports it.
package sidecarargs
