//go:build crashpoints

package crashpoint

import (
	"os"
	"syscall"
	"time"
)

func At(step string) {
	if os.Getenv("UPLOADSETS_CRASH_AT") == step {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // SIGKILL is not handled; nothing after this step may run
	}
}

func Pause(step string) {
	if os.Getenv("UPLOADSETS_PAUSE_AT") != step {
		return
	}
	d, err := time.ParseDuration(os.Getenv("UPLOADSETS_PAUSE_FOR"))
	if err != nil {
		d = time.Second
	}
	time.Sleep(d)
}
