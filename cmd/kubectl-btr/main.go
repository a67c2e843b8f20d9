// kubectl-btr is the kubectl plugin of bank-token-operator: `kubectl btr status|refresh|list|connections`.
// Installed on the PATH as kubectl-btr (make install-plugin), kubectl finds it as `kubectl btr`.
package main

import (
	"context"
	"fmt"
	"os"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/banktoken/bank-token-operator/internal/kubectlbtr"
)

func main() {
	cmd := kubectlbtr.NewCommand(genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(kubectlbtr.ExitCode(err))
	}
}
