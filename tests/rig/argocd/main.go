// The argocd-repo-server command of Argo CD, exactly as upstream's cmd/main.go starts it:
// klog routed to logrus, then the repo-server's own cobra command. Nothing here changes behaviour.
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
	if err := reposerver.NewCommand().Execute(); err != nil {
		os.Exit(1)
	}
}
