//go:build tools

// Package tools pins helm, used to lint and render the chart and install it in e2e.
package tools

import _ "helm.sh/helm/v3/cmd/helm"
