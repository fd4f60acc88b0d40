# Test stand-in for the SDK's include/package.mk, after the real one and
# package-pack.mk: the variables they give a package Makefile, a build
# directory per variant, and BuildPackage, which for the package whose
# VARIANT is the BUILD_VARIANT being built (as package-pack.mk picks
# them) prints its control fields as package-pack.mk writes them, the
# cargo command line, its conffiles and postinst, and makes a target
# install-PACKAGE that runs its install recipe into $(DEST)/PACKAGE.
all:
.PHONY: all

PKG_BUILD_DIR ?= $(BUILD_DIR)/$(if $(BUILD_VARIANT),$(PKG_NAME)-$(BUILD_VARIANT)/)$(PKG_NAME)$(if $(PKG_VERSION),-$(PKG_VERSION))
PKG_INSTALL_DIR ?= $(PKG_BUILD_DIR)/ipkg-install
STAMP_BUILT:=$(PKG_BUILD_DIR)/.built
INSTALL_DIR:=install -d -m0755
INSTALL_BIN:=install -m0755
INSTALL_DATA:=install -m0644
INSTALL_CONF:=install -m0600

mergelist=$(subst $(space),$(comma)$(space),$(strip $(1)))

define BuildPackage
  $(eval VARIANT:=)$(eval PROVIDES:=)$(eval CONFLICTS:=)$(eval DEPENDS:=)$(eval DEFAULT_VARIANT:=)
  $(eval $(Package/$(1)))
  $(if $(filter $(BUILD_VARIANT),$(VARIANT)),$(info Package: $(1))$(info Depends: $(DEPENDS))$(info Conflicts: $(call mergelist,$(CONFLICTS)))$(info Provides: $(call mergelist,$(PROVIDES)))$(info Default-Variant: $(DEFAULT_VARIANT))$(info Cargo: $(Build/Compile/Cargo))$(info Install-Dir: $(PKG_INSTALL_DIR))$(info Stamp-Built: $(STAMP_BUILT))$(info Conffiles: $(strip $(Package/$(1)/conffiles)))$(info Postinst: $(Package/$(1)/postinst)))
  install-$(1):
	$$(call Package/$(1)/install,$$(DEST)/$(1))
endef
