import Foundation
import GGUF

/// Checks, before anything is allocated, that the models and the KV caches that flags ask for fit
/// in the machine's memory. A cache only touches its pages as positions fill, so an oversized
/// `-c` would otherwise fail late, or abort in the allocator.
public enum MemoryBudget {
    /// Bytes this process may use: physical memory, or a cgroup limit below it.
    public static var available: Int {
        var bytes = Int(clamping: ProcessInfo.processInfo.physicalMemory)
        for path in ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"] {
            if let text = try? String(contentsOfFile: path, encoding: .utf8),
               let limit = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)), limit > 0 {
                bytes = min(bytes, limit)
            }
        }
        return bytes
    }

    /// Refuses `sequences` KV caches of `contextSize` positions for each model, plus the weights,
    /// when they need more than `available` bytes.
    public static func check(_ files: [GGUFFile], contextSize: Int, sequences: Int, available: Int = MemoryBudget.available) throws {
        guard contextSize >= 1, contextSize <= maxContext else {
            throw ModelError.badSize("the context size \(contextSize) is outside 1...\(maxContext)")
        }
        let perPosition = try files.reduce(0) { $0.adding(try ModelConfig(gguf: $1).kvBytesPerPosition) }
        let weights = files.reduce(0) { $0.adding($1.size) }
        let need = weights.adding(perPosition.multiplied(by: contextSize).multiplied(by: sequences))
        guard need <= available else {
            throw ModelError.badSize(
                "a context of \(contextSize) positions for \(sequences) sequence\(sequences == 1 ? "" : "s") needs \(formatBytes(need)) " +
                "(KV caches \(formatBytes(perPosition)) per position, and the weights) but this machine has \(formatBytes(available)): " +
                "lower -c/--ctx-size\(sequences > 1 ? " or -np" : "")")
        }
    }

    /// Kernels index positions with 32-bit integers.
    public static let maxContext = 1 << 30
}

/// `1.5 GiB`, `23.0 KiB`.
public func formatBytes(_ n: Int) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    var v = Double(n), i = 0
    while v >= 1024, i < units.count - 1 { v /= 1024; i += 1 }
    return i == 0 ? "\(n) bytes" : String(format: "%.1f %@", v, units[i])
}

extension Int {
    /// Saturating arithmetic for sizes: a product past Int.max is simply too large.
    func adding(_ n: Int) -> Int { let (r, o) = addingReportingOverflow(n); return o ? .max : r }
    func multiplied(by n: Int) -> Int { let (r, o) = multipliedReportingOverflow(by: n); return o ? .max : r }
}
