import Foundation
import GGUF
import Kernels

/// A decoder-only transformer (LLaMA, Qwen2, Qwen3) whose weights stay in the mapped GGUF file.
public final class Model: @unchecked Sendable {
    public let file: GGUFFile
    public let config: ModelConfig
    public let tokenizer: Tokenizer
    /// Most positions one forward call processes; longer inputs are split.
    public let maxBatch: Int

    struct Layer {
        let attnNorm: UnsafePointer<Float>
        let wq, wk, wv, wo: WeightMatrix
        let bq, bk, bv: UnsafePointer<Float>?        // Qwen2 has QKV biases
        let qNorm, kNorm: UnsafePointer<Float>?       // Qwen3 normalises q and k per head
        let ffnNorm: UnsafePointer<Float>
        let gate, up, down: WeightMatrix
    }

    let embedding: WeightMatrix
    let layers: [Layer]
    let outputNorm: UnsafePointer<Float>
    let output: WeightMatrix                  // token_embd when the output is tied
    let ropeFreqFactors: UnsafePointer<Float>?
    let scratch: Scratch
    public let batcher = Batcher()

    public convenience init(path: String, maxBatch: Int = 256) throws {
        try self.init(file: GGUFFile(path: path), maxBatch: maxBatch)
    }

    public init(file: GGUFFile, maxBatch: Int = 256) throws {
        self.file = file
        let c = try ModelConfig(gguf: file)
        config = c
        tokenizer = try Tokenizer(gguf: file)
        guard tokenizer.vocabSize == c.vocabSize else {
            throw ModelError.badConfig(path: file.path, detail: "\(GGUFKey.Tokenizer.tokens) has \(tokenizer.vocabSize) tokens but the model's vocabulary has \(c.vocabSize) rows")
        }
        guard (1...4096).contains(maxBatch) else { throw ModelError.badSize("a batch of \(maxBatch) positions is outside 1...4096") }
        self.maxBatch = maxBatch
        let qDim = c.heads * c.headDim, kvDim = c.kvHeads * c.headDim

        func tensor(_ name: String, _ shape: [Int]) throws -> GGUFTensor {
            let t = try file.tensor(name)
            guard t.dims == shape else { throw ModelError.shapeMismatch(path: file.path, tensor: name, expected: shape, found: t.dims) }
            return t
        }
        func matrix(_ name: String, _ cols: Int, _ rows: Int) throws -> WeightMatrix { try WeightMatrix(tensor(name, [cols, rows])) }
        func vector(_ name: String, _ n: Int) throws -> UnsafePointer<Float> {
            let t = try tensor(name, [n])
            guard t.type == .f32 else { throw KernelError.unsupportedType(tensor: name, type: t.type) }
            return t.data.assumingMemoryBound(to: Float.self)
        }
        func optionalVector(_ name: String, _ n: Int) throws -> UnsafePointer<Float>? {
            file.tensors[name] == nil ? nil : try vector(name, n)
        }

        let tied = file.tensors["output.weight"] == nil
        embedding = try WeightMatrix(tensor("token_embd.weight", [c.dim, c.vocabSize]), pack: tied)
        output = tied ? embedding : try matrix("output.weight", c.dim, c.vocabSize)
        outputNorm = try vector("output_norm.weight", c.dim)
        ropeFreqFactors = try optionalVector("rope_freqs.weight", c.ropeDims / 2)
        layers = try (0..<c.layers).map { i in
            let p = "blk.\(i)."
            return Layer(
                attnNorm: try vector(p + "attn_norm.weight", c.dim),
                wq: try matrix(p + "attn_q.weight", c.dim, qDim),
                wk: try matrix(p + "attn_k.weight", c.dim, kvDim),
                wv: try matrix(p + "attn_v.weight", c.dim, kvDim),
                wo: try matrix(p + "attn_output.weight", qDim, c.dim),
                bq: try optionalVector(p + "attn_q.bias", qDim),
                bk: try optionalVector(p + "attn_k.bias", kvDim),
                bv: try optionalVector(p + "attn_v.bias", kvDim),
                qNorm: try optionalVector(p + "attn_q_norm.weight", c.headDim),
                kNorm: try optionalVector(p + "attn_k_norm.weight", c.headDim),
                ffnNorm: try vector(p + "ffn_norm.weight", c.dim),
                gate: try matrix(p + "ffn_gate.weight", c.dim, c.ffnDim),
                up: try matrix(p + "ffn_up.weight", c.dim, c.ffnDim),
                down: try matrix(p + "ffn_down.weight", c.ffnDim, c.dim))
        }
        scratch = Scratch(config: c, maxBatch: maxBatch)
    }

    public func makeCache(capacity: Int) -> KVCache { KVCache(config: config, capacity: capacity) }

    /// Bytes of weights one decode step reads: every matrix product's weights (the embedding only
    /// as one row unless it is also the output layer) and the vectors; add the KV cache's rows.
    public var weightBytesPerToken: Int {
        let vectors = file.tensors.values.filter { $0.dims.count == 1 }.reduce(0) { $0 + $1.byteCount }
        let matrices = layers.reduce(0) { sum, w in [w.wq, w.wk, w.wv, w.wo, w.gate, w.up, w.down].reduce(sum) { $0 + $1.bytes } }
        return vectors + matrices + output.bytes + (output.tensor.name == embedding.tensor.name ? 0 : embedding.tensor.rowBytes)
    }

    /// Bytes of the KV cache a decode step at `position` reads (keys and values of every layer).
    public func cacheBytes(position: Int) -> Int { 2 * config.layers * position * config.kvHeads * config.headDim * MemoryLayout<Float>.size }

    /// Weights in the file (elements of every tensor), the measure of cost per token.
    public var parameterCount: Int { file.tensors.values.reduce(0) { $0 + $1.elementCount } }

    /// Forward calls share a model's scratch buffers and the process-wide kernel thread pool, so
    /// they run one at a time, whichever thread or model they come from (server slots).
    static let engineLock = NSLock()

    /// Which positions of a row need logits.
    public enum LogitsWanted: Equatable, Sendable {
        case last
        case all
        /// Every position from this index of the row's tokens on.
        case from(Int)
        /// None: the row only fills its cache (a chunk of a prompt).
        case none
    }

    /// One sequence in a forward call: the tokens to append to its cache, and what to return for them.
    public struct Row: Sendable {
        public let cache: KVCache
        public let tokens: [Int32]
        public var logits: LogitsWanted
        /// Logits over only the first that many token ids (a cheaper output layer for drafts).
        public var vocabulary: Int?
        /// Also return the last hidden state (after the final norm, the input of the output matrix)
        /// of each wanted position: what a head trained on top of the frozen model reads.
        public var keepsHidden: Bool

        public init(cache: KVCache, tokens: [Int32], logits: LogitsWanted = .last, vocabulary: Int? = nil, keepsHidden: Bool = false) {
            (self.cache, self.tokens, self.logits, self.vocabulary, self.keepsHidden) = (cache, tokens, logits, vocabulary, keepsHidden)
        }

        /// Index of the first token whose logits are wanted.
        var firstWanted: Int {
            switch logits {
            case .last: tokens.count - 1
            case .all: 0
            case .from(let i): min(max(i, 0), tokens.count - 1)
            case .none: tokens.count
            }
        }
    }

    /// What a forward returns for one row: logits, one row of its vocabulary per wanted position,
    /// and with `keepsHidden` as many hidden states of `dim` (else empty).
    public struct Output: Sendable {
        public var logits: [Float]
        public var hidden: [Float]
    }

    /// Runs each row's tokens at positions cache.count ..< cache.count + tokens.count of its own
    /// cache, appends their keys and values to it, and returns each row's output. Every weight
    /// matrix goes over the positions of all rows in one product, at most `maxBatch` at a time:
    /// decoding is bound by reading the weights, so several rows cost little more than one.
    /// Attention runs per row over its own cache. The logits of a position do not depend on how
    /// the input is split into calls, chunks or rows.
    public func forward(_ rows: [Row]) throws -> [Output] {
        guard !rows.isEmpty else { throw ModelError.emptyInput }
        for row in rows { try check(row) }
        guard Set(rows.map { ObjectIdentifier($0.cache) }).count == rows.count else {
            throw ModelError.badConfig(path: file.path, detail: "a cache appears twice in one forward")
        }
        // Every row's logits and hidden states in one buffer each, row after row, from these offsets.
        let D = config.dim, V = rows.map { min($0.vocabulary ?? config.vocabSize, config.vocabSize) }
        var logitsAt = [0], hiddenAt = [0]
        for (r, row) in rows.enumerated() {
            let n = row.tokens.count - row.firstWanted
            logitsAt.append(logitsAt[r] + n * V[r])
            hiddenAt.append(hiddenAt[r] + (row.keepsHidden ? n * D : 0))
        }
        var logits = [Float](repeating: 0, count: logitsAt[rows.count]), hidden = [Float](repeating: 0, count: hiddenAt[rows.count])
        Model.engineLock.lock()
        defer { Model.engineLock.unlock() }
        logits.withUnsafeMutableBufferPointer { lp in
            hidden.withUnsafeMutableBufferPointer { hp in
                // The rows' positions in order, cut into chunks of at most maxBatch (a row may span chunks).
                var parts: [Part] = [], size = 0
                for (r, row) in rows.enumerated() {
                    var i = 0
                    while i < row.tokens.count {
                        let n = min(maxBatch - size, row.tokens.count - i)
                        let wanted = min(max(row.firstWanted - i, 0), n) ..< n
                        let done = max(i + wanted.lowerBound - row.firstWanted, 0)   // wanted positions in earlier chunks
                        parts.append(Part(cache: row.cache, tokens: row.tokens[i ..< i + n], wanted: wanted, vocabulary: V[r],
                                          logits: lp.baseAddress! + logitsAt[r] + done * V[r],
                                          hidden: row.keepsHidden ? hp.baseAddress! + hiddenAt[r] + done * D : nil))
                        size += n; i += n
                        if size == maxBatch { forwardChunk(parts); parts = []; size = 0 }
                    }
                }
                if !parts.isEmpty { forwardChunk(parts) }
            }
        }
        if rows.count == 1 { return [Output(logits: logits, hidden: hidden)] }
        return rows.indices.map { Output(logits: Array(logits[logitsAt[$0] ..< logitsAt[$0 + 1]]), hidden: Array(hidden[hiddenAt[$0] ..< hiddenAt[$0 + 1]])) }
    }

    /// `forward` of one row, for its logits.
    public func forward(_ tokens: [Int32], cache: KVCache, logits wanted: LogitsWanted = .last, vocabulary: Int? = nil) throws -> [Float] {
        try forward([Row(cache: cache, tokens: tokens, logits: wanted, vocabulary: vocabulary)])[0].logits
    }

    /// A row fits its cache, which this model made, and holds token ids of this model.
    func check(_ row: Row) throws {
        let cache = row.cache
        guard !row.tokens.isEmpty else { throw ModelError.emptyInput }
        guard cache.layers == config.layers, cache.width == config.kvHeads * config.headDim else {
            throw ModelError.badConfig(path: file.path, detail: "a KV cache of \(cache.layers) layers of width \(cache.width) made by another model")
        }
        guard cache.count + row.tokens.count <= cache.capacity else {
            throw ModelError.contextOverflow(needed: cache.count + row.tokens.count, contextSize: cache.capacity)
        }
        for t in row.tokens where t < 0 || Int(t) >= config.vocabSize { throw TokenizerError.invalidToken(t) }
        if let v = row.vocabulary, v < 1 { throw ModelError.badSize("logits over \(v) token ids") }
    }

    /// A row's tokens in one chunk, the indices among them whose logits are wanted, and where those
    /// logits (rows of `vocabulary`) and hidden states go.
    struct Part {
        let cache: KVCache
        let tokens: ArraySlice<Int32>
        let wanted: Range<Int>
        let vocabulary: Int
        let logits: UnsafeMutablePointer<Float>
        let hidden: UnsafeMutablePointer<Float>?
    }

    /// One forward over at most `maxBatch` positions, written like llama2.c's `forward`.
    func forwardChunk(_ parts: [Part]) {
        let c = config, s = scratch
        let T = parts.reduce(0) { $0 + $1.tokens.count }
        let dim = c.dim, hd = c.headDim, qDim = c.heads * hd, kvDim = c.kvHeads * hd, half = c.ropeDims / 2

        // Token embeddings -> x (T, dim); RoPE angles at each row's own positions (T, ropeDims/2)
        var t = 0
        for p in parts {
            for (i, token) in p.tokens.enumerated() {
                embedding.row(Int(token), into: s.x + t * dim)
                ropeAngles(position: p.cache.count + i, dims: c.ropeDims, base: c.ropeBase, positionScale: c.ropePositionScale,
                           freqFactors: ropeFreqFactors, cos: s.cos + t * half, sin: s.sin + t * half)
                t += 1
            }
        }

        for (l, w) in layers.enumerated() {
            // Attention input norm: xb = rmsnorm(x)
            for t in 0..<T { rmsNorm(s.x + t * dim, weight: w.attnNorm, into: s.xb + t * dim, n: dim, eps: c.rmsEps) }

            // q (T, qDim), k and v (T, kvDim): one product each over every row's positions
            WeightMatrix.apply([(w.wq, s.q), (w.wk, s.k), (w.wv, s.v)], s.xb, count: T)
            for t in 0..<T {
                finishQKV(w, q: s.q + t * qDim, k: s.k + t * kvDim, v: s.v + t * kvDim, cos: s.cos + t * half, sin: s.sin + t * half)
            }

            // Per row: k and v into its cache; then causal attention of every row over its own
            // positions 0 ... count + i, as one job -> att (T, qDim)
            var t0 = 0, rows: [AttentionRow] = []
            rows.reserveCapacity(parts.count)
            for p in parts {
                let n = p.tokens.count, pos0 = p.cache.count, keys = p.cache.keys(layer: l), values = p.cache.values(layer: l)
                (keys + pos0 * kvDim).update(from: s.k + t0 * kvDim, count: n * kvDim)
                (values + pos0 * kvDim).update(from: s.v + t0 * kvDim, count: n * kvDim)
                rows.append(AttentionRow(q: s.q + t0 * qDim, k: keys, v: values, out: s.att + t0 * qDim, count: n, start: pos0))
                t0 += n
            }
            attention(rows: rows, heads: c.heads, kvHeads: c.kvHeads, headDim: hd, kvStride: kvDim, scale: 1 / Float(hd).squareRoot())

            // Output projection and residual: x += Wo att
            w.wo.apply(s.att, count: T, into: s.xb)
            addInPlace(s.x, s.xb, n: T * dim)

            // Feed-forward: x += down(silu(gate(xn)) * up(xn))
            for t in 0..<T { rmsNorm(s.x + t * dim, weight: w.ffnNorm, into: s.xb + t * dim, n: dim, eps: c.rmsEps) }
            WeightMatrix.apply([(w.gate, s.hb), (w.up, s.hb2)], s.xb, count: T)
            swiglu(s.hb, s.hb2, n: T * c.ffnDim)
            w.down.apply(s.hb, count: T, into: s.xb)
            addInPlace(s.x, s.xb, n: T * dim)
        }
        for p in parts { p.cache.advance(by: p.tokens.count) }
        projectLogits(parts)
    }

    /// Biases, Qwen3's q/k norms and RoPE for one position's q, k and v (in place).
    @inline(__always)
    func finishQKV(_ w: Layer, q: UnsafeMutablePointer<Float>, k: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>,
                   cos: UnsafePointer<Float>, sin: UnsafePointer<Float>) {
        let c = config, hd = c.headDim, qDim = c.heads * hd, kvDim = c.kvHeads * hd
        if let b = w.bq { addInPlace(q, b, n: qDim) }
        if let b = w.bk { addInPlace(k, b, n: kvDim) }
        if let b = w.bv { addInPlace(v, b, n: kvDim) }
        // Qwen3: per-head RMS norm of q and k before RoPE
        if let qn = w.qNorm { for h in 0..<c.heads { rmsNorm(q + h * hd, weight: qn, into: q + h * hd, n: hd, eps: c.rmsEps) } }
        if let kn = w.kNorm { for h in 0..<c.kvHeads { rmsNorm(k + h * hd, weight: kn, into: k + h * hd, n: hd, eps: c.rmsEps) } }
        // RoPE on every head of q and k
        for h in 0..<c.heads { rope(q + h * hd, cos: cos, sin: sin, dims: c.ropeDims, neox: c.ropeNeox) }
        for h in 0..<c.kvHeads { rope(k + h * hd, cos: cos, sin: sin, dims: c.ropeDims, neox: c.ropeNeox) }
    }

    /// Final norm and the output projection, only for the positions that need logits. Parts whose
    /// logits lie side by side with one vocabulary (a row, or decode steps of several) share a product.
    func projectLogits(_ parts: [Part]) {
        let s = scratch, dim = config.dim
        var runs: [(first: Int, count: Int, into: UnsafeMutablePointer<Float>, vocabulary: Int)] = []
        var t = 0, w = 0   // the part's first position in the chunk, its first normed row in xb
        for p in parts {
            for (j, i) in p.wanted.enumerated() {
                rmsNorm(s.x + (t + i) * dim, weight: outputNorm, into: s.xb + (w + j) * dim, n: dim, eps: config.rmsEps)
            }
            p.hidden?.update(from: s.xb + w * dim, count: p.wanted.count * dim)
            if let r = runs.last, r.vocabulary == p.vocabulary, r.into + r.count * r.vocabulary == p.logits {
                runs[runs.count - 1].count += p.wanted.count
            } else if !p.wanted.isEmpty {
                runs.append((w, p.wanted.count, p.logits, p.vocabulary))
            }
            t += p.tokens.count; w += p.wanted.count
        }
        for r in runs { output.apply(s.xb + r.first * dim, count: r.count, into: r.into, rows: r.vocabulary) }
    }
}

/// Activations for one forward call, allocated once per model for `maxBatch` positions.
final class Scratch {
    let x, xb, q, k, v, att, hb, hb2, cos, sin: UnsafeMutablePointer<Float>

    init(config c: ModelConfig, maxBatch T: Int) {
        k = .allocate(capacity: T * c.kvHeads * c.headDim)
        v = .allocate(capacity: T * c.kvHeads * c.headDim)
        x = .allocate(capacity: T * c.dim)
        xb = .allocate(capacity: T * max(c.dim, c.heads * c.headDim))
        q = .allocate(capacity: T * c.heads * c.headDim)
        att = .allocate(capacity: T * c.heads * c.headDim)
        hb = .allocate(capacity: T * c.ffnDim)
        hb2 = .allocate(capacity: T * c.ffnDim)
        cos = .allocate(capacity: T * c.ropeDims / 2)
        sin = .allocate(capacity: T * c.ropeDims / 2)
    }

    deinit { for p in [x, xb, q, k, v, att, hb, hb2, cos, sin] { p.deallocate() } }
}
