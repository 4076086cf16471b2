// Command pause is the sandbox process of a pod on the local real node (hack/node-up.sh): it
// holds the pod's namespaces and waits until it is told to stop. No image can be pulled on the
// machines driftguard is developed on, so this one is built here.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
}
