# SPDX-License-Identifier: GPL-2.0
#
# zcsend: out-of-tree Rust kernel module.
#
#   make                 build .build/mod-x86/zcsend.ko against $(KDIR)
#                        (default: the cached test kernel, built on first
#                        use); objects go to $(MO), out of the source tree
#   make run             build everything, boot the guest, show the sample
#   make check           build everything, boot the guest, run the selftests
#   make bench           benchmark zcsend against its peers (TCG and UML)
#   make clean           kbuild's clean of $(MO) (with a kernel at hand),
#                        then .build/
#
# KDIR may point at any Rust-enabled 7.2 build tree (with Module.symvers).
# Every build puts its objects under .build/ with kbuild's MO= (the source
# tree must stay clean for that: kbuild refuses MO= otherwise).

LLVM ?= -19
export LLVM

ifneq ($(KERNELRELEASE),)
include $(src)/Kbuild
else

HERE := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
# Lazily evaluated: only targets that need a kernel build one.
KDIR ?= $(shell $(HERE)/scripts/kernel.sh x86 | tail -1)
MO ?= $(HERE)/.build/mod-x86

.PHONY: all modules clean deps run check bench

all: modules

modules:
	@mkdir -p $(MO)
	$(MAKE) -C $(KDIR) M=$(HERE) MO=$(MO) LLVM=$(LLVM) $(if $(KRUSTFLAGS),KRUSTFLAGS="$(KRUSTFLAGS)") modules

deps:
	@$(HERE)/scripts/deps.sh

run: deps
	@$(HERE)/scripts/run.sh

check: deps
	@$(HERE)/scripts/check.sh

bench: deps
	@$(HERE)/scripts/bench.sh

# kbuild's own clean, when the test kernel is already built (clean never
# builds one); .build/ holds nothing else worth keeping.
clean:
	@kdir=$$($(HERE)/scripts/kernel.sh --dir x86); \
	if [ -d "$(MO)" ] && [ -f "$$kdir/.zcsend-built" ]; then \
		$(MAKE) -C "$$kdir" M=$(HERE) MO=$(MO) LLVM=$(LLVM) clean; \
	fi
	rm -rf $(HERE)/.build

endif
