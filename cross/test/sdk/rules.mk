# Test stand-in for the SDK's rules.mk: the helpers the package Makefile uses.
empty:=
space:= $(empty) $(empty)
comma:=,
toupper=$(shell printf '%s' '$(1)' | tr a-z A-Z)
