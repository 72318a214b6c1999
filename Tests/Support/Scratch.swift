import Foundation

/// Scratch files of one test process: all under one folder, removed when the process exits
/// (tests write whole GGUF copies, so leftovers add up to gigabytes).
public enum Scratch {
    public static let root: String = {
        atexit { try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + "relay-tests-\(getpid())") }
        return NSTemporaryDirectory() + "relay-tests-\(getpid())"
    }()

    /// A fresh, empty folder.
    public static func directory(_ name: String = "dir") -> String {
        let safe = name.filter { $0.isLetter || $0.isNumber }
        let path = root + "/\(safe)-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}
