package main

import "io"

func runBench(args []string, stdout, stderr io.Writer) int  { return 0 }
func runLoad(args []string, stdin io.Reader, stdout, stderr io.Writer) int { return 0 }
