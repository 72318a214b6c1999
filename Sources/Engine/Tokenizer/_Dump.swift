public func _charClassDump() -> [UInt8] { (0..<0x110000).map { CharClass.of(UInt32($0)).rawValue } }
