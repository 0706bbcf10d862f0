// etcd at the pinned release: the upstream server main (go.etcd.io/etcd/server/v3), over etcdmain.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
