// Package kubectlbtr is the kubectl btr plugin: status, refresh and list of
// BankTokenRequests, and the connections they use, for the on-call engineer. It reads Secrets' metadata only: no token,
// refresh token or credential is ever fetched, so none can be printed.
package kubectlbtr

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// Exit codes, documented in docs/operate.md and in `kubectl btr refresh --help`.
const (
	ExitOK            = 0
	ExitError         = 1 // bad arguments, no such resource, the apiserver refused
	ExitRefreshFailed = 2 // refresh --wait: the operator tried and the bank refused or failed
	ExitWaitTimedOut  = 3 // refresh --wait: no answer within --timeout
)

// ExitCodeError carries the exit code a command ends with.
type ExitCodeError struct {
	Code int
	Err  error
}

func (e *ExitCodeError) Error() string { return e.Err.Error() }
func (e *ExitCodeError) Unwrap() error { return e.Err }

// ExitCode is the process exit code for what a command returned.
func ExitCode(err error) int {
	var coded *ExitCodeError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &coded):
		return coded.Code
	}
	return ExitError
}

// options are what every subcommand shares: kubectl's connection flags and the streams.
type options struct {
	config  *genericclioptions.ConfigFlags
	streams genericiooptions.IOStreams
}

// NewCommand is `kubectl btr` with its subcommands.
func NewCommand(streams genericiooptions.IOStreams) *cobra.Command {
	o := &options{config: genericclioptions.NewConfigFlags(true), streams: streams}
	root := &cobra.Command{
		Use: "kubectl-btr",
		// kubectl finds the binary kubectl-btr on the PATH and runs it as `kubectl btr`.
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl btr"},
		Short:         "Inspect and renew BankTokenRequests, and the connections they use (bank-token-operator)",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	o.config.AddFlags(root.PersistentFlags())
	root.AddCommand(newStatusCommand(o), newRefreshCommand(o), newListCommand(o), newConnectionsCommand(o))
	return root
}

// client is a direct client of the cluster the flags name: no cache, no watch of Secrets.
func (o *options) client() (client.Client, error) {
	restConfig, err := o.config.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := tokensv1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	return client.New(restConfig, client.Options{Scheme: scheme})
}

// target is the client and the key of the BankTokenRequest NAME in the chosen namespace.
func (o *options) target(name string) (client.Client, client.ObjectKey, error) {
	c, err := o.client()
	if err != nil {
		return nil, client.ObjectKey{}, err
	}
	namespace, _, err := o.namespace()
	if err != nil {
		return nil, client.ObjectKey{}, err
	}
	return c, client.ObjectKey{Namespace: namespace, Name: name}, nil
}

// namespace is --namespace, or the kubeconfig context's namespace; explicit says whether
// --namespace was given.
func (o *options) namespace() (namespace string, explicit bool, err error) {
	return o.config.ToRawKubeConfigLoader().Namespace()
}

// outputFlag adds -o json|yaml; empty is the human-readable form.
func outputFlag(cmd *cobra.Command, output *string) {
	cmd.Flags().StringVarP(output, "output", "o", "", "Output format: json or yaml (default: a table for people)")
}

func checkOutput(output string) error {
	if output != "" && output != "json" && output != "yaml" {
		return fmt.Errorf("--output %q: use json or yaml", output)
	}
	return nil
}
