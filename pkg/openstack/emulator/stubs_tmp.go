package emulator

func (e *Emulator) cinderSnapshotRoutes(add addFunc) {}
func (e *Emulator) cinderBackupRoutes(add addFunc)   {}
func (e *Emulator) cinderMiscRoutes(add addFunc)     {}
func (e *Emulator) adminRoutes(add addFunc)          {}
func (e *Emulator) metadataRoutes(add addFunc)       {}
