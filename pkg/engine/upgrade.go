package engine

// upgradeConfigName is the config of the encrypted repository a version-1
// repository is being upgraded to: while it is there, the repository is
// being upgraded and only `repo upgrade` opens it.
const upgradeConfigName = "upgrade/config"
