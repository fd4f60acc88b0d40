# Test stand-in for the packages feed's lang/rust/rust-package.mk and
# rust-values.mk: RUST_ARCH_DEPENDS, CARGO_PKG_PROFILE, CARGO_PKG_CONFIG_VARS
# and the cargo command line of Build/Compile/Cargo, as the real ones.
RUST_ARCH_DEPENDS:=@(aarch64||arm||i386||i686||mips||mipsel||mips64||mips64el||mipsel||powerpc64||riscv64||x86_64)
CARGO_PKG_PROFILE:=release
CARGO_PKG_CONFIG_VARS=

define Build/Compile/Cargo
cargo install -v --profile $(CARGO_PKG_PROFILE) $(if $(strip $(RUST_PKG_FEATURES)),--features "$(strip $(RUST_PKG_FEATURES))") --root $(PKG_INSTALL_DIR) --path "$(PKG_BUILD_DIR)"
endef

define RustBinPackage
endef
