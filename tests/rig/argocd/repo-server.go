// Only the repo-server component of Argo CD's `argocd` binary, for the versions the tests run as a
// bare repo-server (every version but the node's). The command, its flags and its klog-to-logrus
// wiring are upstream's, as in ../main.go; the other components are not linked, so the build
// compiles about half of what the whole binary needs.
package main

import (
	"os"

	"k8s.io/klog/v2"

	reposerver "github.com/argoproj/argo-cd/v3/cmd/argocd-repo-server/commands"
	"github.com/argoproj/argo-cd/v3/util/log"
)

func init() {
	klog.SetLogger(log.NewLogrusLogger(log.NewWithCurrentConfig()))
}

func main() {
	// cobra has already printed the error.
	if err := reposerver.NewCommand().Execute(); err != nil {
		os.Exit(1)
	}
}
