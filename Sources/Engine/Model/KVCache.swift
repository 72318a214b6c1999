/// Keys and values of every layer for positions 0 ..< count, in two flat fp32 buffers laid out
/// (layer, position, kvHeads * headDim). Entries past `count` are never read, so rolling back a
/// rejected draft or a hand-over is one `truncate(to:)`.
public final class KVCache: @unchecked Sendable {
    public let capacity: Int
    public let layers: Int
    /// Floats per position per layer (kvHeads * headDim).
    public let width: Int
    public private(set) var count = 0

    let keys: UnsafeMutablePointer<Float>
    let values: UnsafeMutablePointer<Float>

    /// Pages are only touched as positions fill, so a large capacity costs address space, not memory.
    public init(config: ModelConfig, capacity: Int) {
        self.capacity = capacity
        self.layers = config.layers
        self.width = config.kvHeads * config.headDim
        let n = layers * capacity * width
        keys = .allocate(capacity: n)
        values = .allocate(capacity: n)
    }

    deinit {
        keys.deallocate()
        values.deallocate()
    }

    @inline(__always) func keys(layer: Int) -> UnsafeMutablePointer<Float> { keys + layer * capacity * width }
    @inline(__always) func values(layer: Int) -> UnsafeMutablePointer<Float> { values + layer * capacity * width }

    /// Marks `n` more positions as filled (their rows were written by the forward pass).
    func advance(by n: Int) { count += n }

    /// Forgets every position from `n` on.
    public func truncate(to n: Int) {
        precondition(n >= 0 && n <= count, "truncate(to: \(n)) outside 0...\(count)")
        count = n
    }

    public var bytes: Int { 2 * layers * capacity * width * MemoryLayout<Float>.size }
}
