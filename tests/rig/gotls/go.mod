// TLS servers on Go's crypto/tls (Argo CD's TLS stack), each wrong in exactly one respect, for the
// verdict tests. Standard library only.
module argocd-mtls-verify/rig/gotls

go 1.26
