//go:build tools

// Package tools pins the commands `go build` makes from this module (k8s/realcluster/build.py).
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
