// The `argocd` binary of Argo CD's images: one program that is every component, chosen by the
// name it runs under (argv[0], or ARGOCD_BINARY_NAME), as upstream's cmd/main.go does. klog goes
// to logrus as upstream sets it. Only the components the pinned install manifest starts, and the
// CLI its Redis init container runs (`argocd admin redis-initial-password`), are wired; nothing
// here changes behaviour.
package main

import (
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	appcontroller "github.com/argoproj/argo-cd/v3/cmd/argocd-application-controller/commands"
	applicationset "github.com/argoproj/argo-cd/v3/cmd/argocd-applicationset-controller/commands"
	cmpserver "github.com/argoproj/argo-cd/v3/cmd/argocd-cmp-server/commands"
	notification "github.com/argoproj/argo-cd/v3/cmd/argocd-notification/commands"
	reposerver "github.com/argoproj/argo-cd/v3/cmd/argocd-repo-server/commands"
	apiserver "github.com/argoproj/argo-cd/v3/cmd/argocd-server/commands"
	cli "github.com/argoproj/argo-cd/v3/cmd/argocd/commands"
	"github.com/argoproj/argo-cd/v3/common"
	"github.com/argoproj/argo-cd/v3/util/log"
)

func init() {
	klog.SetLogger(log.NewLogrusLogger(log.NewWithCurrentConfig()))
}

func main() {
	name := filepath.Base(os.Args[0])
	if forced := os.Getenv("ARGOCD_BINARY_NAME"); forced != "" {
		name = forced
	}
	components := map[string]func() *cobra.Command{
		common.CommandServer:                   apiserver.NewCommand,
		common.CommandApplicationController:    appcontroller.NewCommand,
		common.CommandRepoServer:               reposerver.NewCommand,
		common.CommandCMPServer:                cmpserver.NewCommand,
		common.CommandNotifications:            notification.NewCommand,
		common.CommandApplicationSetController: applicationset.NewCommand,
	}
	command := cli.NewCommand
	if component, ok := components[name]; ok {
		command = component
	}
	// cobra has already printed the error.
	if err := command().Execute(); err != nil {
		os.Exit(1)
	}
}
