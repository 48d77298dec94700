// Command etcd is etcd's own server, built from go.etcd.io/etcd/server/v3 at
// the version this module requires, for Maxwell's Kubernetes tests (Debian's
// etcd is too old for Kubernetes 1.37).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
