// Command digit writes one MNIST test digit (index -i, default 7777) as a
// 28×28 PNG to standard output, for load tests.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/aeserve/aeserve/internal/digit"
	"github.com/aeserve/aeserve/internal/model"
	"github.com/aeserve/aeserve/internal/train"
)

func main() {
	i := flag.Int("i", 7777, "test image index")
	data := flag.String("data", "../shared/mnist", "MNIST directory")
	flag.Parse()
	imgs, n, err := train.ReadImages(*data + "/t10k-images-idx3-ubyte.gz")
	if err == nil && (*i < 0 || *i >= n) {
		err = fmt.Errorf("index %d out of range [0,%d)", *i, n)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "digit:", err)
		os.Exit(1)
	}
	png, err := digit.EncodePNG(imgs[*i*model.ImageLen : (*i+1)*model.ImageLen])
	if err != nil {
		fmt.Fprintln(os.Stderr, "digit:", err)
		os.Exit(1)
	}
	os.Stdout.Write(png)
}
