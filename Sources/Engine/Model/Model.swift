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
    let batcher = DecodeBatcher()

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

    /// Weights in the file (elements of every tensor), the measure of cost per token.
    public var parameterCount: Int { file.tensors.values.reduce(0) { $0 + $1.elementCount } }

    /// Forward calls share a model's scratch buffers and the process-wide kernel thread pool, so
    /// they run one at a time, whichever thread or model they come from (server slots).
    static let engineLock = NSLock()

    /// Which positions of a forward call need logits.
    public enum LogitsWanted: Equatable {
        case last
        case all
        /// Every position from this index of the input on.
        case from(Int)
    }

    /// Runs `tokens` at positions cache.count ..< cache.count + tokens.count, appends their keys and
    /// values to the cache, and returns logits, one row of `vocabSize` per wanted position; with
    /// `vocabulary`, rows of only the first that many token ids (a cheaper output layer for drafts).
    /// The logits of a position do not depend on how the input is split into calls.
    public func forward(_ tokens: [Int32], cache: KVCache, logits wanted: LogitsWanted = .last, vocabulary: Int? = nil) throws -> [Float] {
        try run(tokens, cache: cache, wanted: wanted, keepHidden: false, vocabulary: vocabulary).logits
    }

    /// `forward`, and also the last hidden state (after the final norm, the input of the output
    /// matrix) of each wanted position, one row of `dim` per row of logits: what a head trained on
    /// top of the frozen model reads.
    public func forwardWithHidden(_ tokens: [Int32], cache: KVCache, logits wanted: LogitsWanted = .last) throws -> (logits: [Float], hidden: [Float]) {
        try run(tokens, cache: cache, wanted: wanted, keepHidden: true, vocabulary: nil)
    }

    func run(_ tokens: [Int32], cache: KVCache, wanted: LogitsWanted, keepHidden: Bool, vocabulary: Int?) throws -> (logits: [Float], hidden: [Float]) {
        guard !tokens.isEmpty else { throw ModelError.emptyInput }
        guard cache.count + tokens.count <= cache.capacity else {
            throw ModelError.contextOverflow(needed: cache.count + tokens.count, contextSize: cache.capacity)
        }
        for t in tokens where t < 0 || Int(t) >= config.vocabSize {
            throw TokenizerError.invalidToken(t)
        }
        let first: Int
        switch wanted {
        case .last: first = tokens.count - 1
        case .all: first = 0
        case .from(let i): first = min(max(i, 0), tokens.count - 1)
        }
        Model.engineLock.lock()
        defer { Model.engineLock.unlock() }
        return evaluate(tokens, cache: cache, firstLogitRow: first, keepHidden: keepHidden, vocabulary: vocabulary)
    }

    /// `forward` after its checks, with the engine lock held.
    func evaluate(_ tokens: [Int32], cache: KVCache, firstLogitRow first: Int, keepHidden: Bool = false,
                  vocabulary: Int? = nil) -> (logits: [Float], hidden: [Float]) {
        let V = min(vocabulary ?? config.vocabSize, config.vocabSize), D = config.dim
        var out = [Float](repeating: 0, count: (tokens.count - first) * V)
        var hidden = [Float](repeating: 0, count: keepHidden ? (tokens.count - first) * D : 0)
        var start = 0
        while start < tokens.count {
            let n = min(maxBatch, tokens.count - start)
            let rows = min(max(first - start, 0), n) ..< n
            let written = max(start - first, 0)
            out.withUnsafeMutableBufferPointer { o in
                hidden.withUnsafeMutableBufferPointer { h in
                    forwardBatch(Array(tokens[start ..< start + n]), cache: cache, logitRows: rows, vocabulary: V,
                                 into: o.baseAddress! + written * V, hidden: keepHidden ? h.baseAddress! + written * D : nil)
                }
            }
            start += n
        }
        return (out, hidden)
    }

    /// One forward over at most `maxBatch` positions, written like llama2.c's `forward`.
    func forwardBatch(_ tokens: [Int32], cache: KVCache, logitRows: Range<Int>, vocabulary: Int, into logits: UnsafeMutablePointer<Float>,
                      hidden: UnsafeMutablePointer<Float>? = nil) {
        let c = config, s = scratch
        let T = tokens.count, pos0 = cache.count
        let dim = c.dim, hd = c.headDim, qDim = c.heads * hd, kvDim = c.kvHeads * hd

        // Token embeddings -> x (T, dim)
        for (t, token) in tokens.enumerated() { embedding.row(Int(token), into: s.x + t * dim) }

        // RoPE angles for the new positions (T, ropeDims/2)
        let half = c.ropeDims / 2
        for t in 0..<T {
            ropeAngles(position: pos0 + t, dims: c.ropeDims, base: c.ropeBase, positionScale: c.ropePositionScale,
                       freqFactors: ropeFreqFactors, cos: s.cos + t * half, sin: s.sin + t * half)
        }

        for (l, w) in layers.enumerated() {
            // Attention input norm: xb = rmsnorm(x)
            for t in 0..<T { rmsNorm(s.x + t * dim, weight: w.attnNorm, into: s.xb + t * dim, n: dim, eps: c.rmsEps) }

            // q (T, qDim); k, v written straight into the cache rows of the new positions (T, kvDim)
            let kRows = cache.keys(layer: l) + pos0 * kvDim
            let vRows = cache.values(layer: l) + pos0 * kvDim
            w.wq.apply(s.xb, count: T, into: s.q)
            w.wk.apply(s.xb, count: T, into: kRows)
            w.wv.apply(s.xb, count: T, into: vRows)
            for t in 0..<T {
                finishQKV(w, q: s.q + t * qDim, k: kRows + t * kvDim, v: vRows + t * kvDim, cos: s.cos + t * half, sin: s.sin + t * half)
            }

            // Causal attention over positions 0 ... pos0 + t -> att (T, qDim)
            attention(q: s.q, k: cache.keys(layer: l), v: cache.values(layer: l), out: s.att, count: T, start: pos0,
                      heads: c.heads, kvHeads: c.kvHeads, headDim: hd, kvStride: kvDim, scale: 1 / Float(hd).squareRoot())

            outputAndFeedForward(w, count: T)
        }
        cache.advance(by: T)
        projectLogits(rows: logitRows, vocabulary: vocabulary, into: logits, hidden: hidden)
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

    /// The rest of a layer once attention wrote `scratch.att` (T, qDim): the output projection, the
    /// feed-forward block and both residuals.
    func outputAndFeedForward(_ w: Layer, count T: Int) {
        let c = config, s = scratch, dim = c.dim
        // Output projection and residual: x += Wo att
        w.wo.apply(s.att, count: T, into: s.xb)
        addInPlace(s.x, s.xb, n: T * dim)

        // Feed-forward: x += down(silu(gate(xn)) * up(xn))
        for t in 0..<T { rmsNorm(s.x + t * dim, weight: w.ffnNorm, into: s.xb + t * dim, n: dim, eps: c.rmsEps) }
        w.gate.apply(s.xb, count: T, into: s.hb)
        w.up.apply(s.xb, count: T, into: s.hb2)
        swiglu(s.hb, s.hb2, n: T * c.ffnDim)
        w.down.apply(s.hb, count: T, into: s.xb)
        addInPlace(s.x, s.xb, n: T * dim)
    }

    /// Final norm and the output projection (over the first `vocabulary` token ids), only for the
    /// rows that need logits; the normed rows also go to `hidden` when given.
    func projectLogits(rows: Range<Int>, vocabulary: Int? = nil, into logits: UnsafeMutablePointer<Float>,
                       hidden: UnsafeMutablePointer<Float>? = nil) {
        guard !rows.isEmpty else { return }
        let s = scratch, dim = config.dim
        for (i, t) in rows.enumerated() {
            rmsNorm(s.x + t * dim, weight: outputNorm, into: s.xb + i * dim, n: dim, eps: config.rmsEps)
        }
        hidden?.update(from: s.xb, count: rows.count * dim)
        output.apply(s.xb, count: rows.count, into: logits, rows: vocabulary)
    }

    // MARK: Several sequences in one forward

    /// One decode step for several sequences at once (server slots): sequence i appends `tokens[i]`
    /// to `caches[i]`. The new tokens go through every weight matrix in one batched product, which
    /// costs little more than one token because decoding is bound by reading the weights;
    /// attention runs per sequence over its own cache. Returns the logits of each sequence's new
    /// position. The single-sequence `forward` is unchanged.
    /// One decode step of one sequence, batched with the decode steps other threads are making
    /// on this model at the same moment (see `DecodeBatcher`). Returns the new position's logits.
    public func decode(_ token: Int32, cache: KVCache) throws -> [Float] {
        guard cache.count + 1 <= cache.capacity else { throw ModelError.contextOverflow(needed: cache.count + 1, contextSize: cache.capacity) }
        guard token >= 0, Int(token) < config.vocabSize else { throw TokenizerError.invalidToken(token) }
        return batcher.run(token, cache: cache, model: self)
    }

    public func forward(decoding tokens: [Int32], caches: [KVCache]) throws -> [[Float]] {
        guard !tokens.isEmpty, tokens.count == caches.count else { throw ModelError.emptyInput }
        guard tokens.count <= maxBatch else { throw ModelError.badConfig(path: file.path, detail: "\(tokens.count) sequences exceed the batch of \(maxBatch)") }
        guard Set(caches.map(ObjectIdentifier.init)).count == caches.count else {
            throw ModelError.badConfig(path: file.path, detail: "a cache appears twice in one batched forward")
        }
        for (t, cache) in zip(tokens, caches) {
            guard cache.count + 1 <= cache.capacity else { throw ModelError.contextOverflow(needed: cache.count + 1, contextSize: cache.capacity) }
            guard t >= 0, Int(t) < config.vocabSize else { throw TokenizerError.invalidToken(t) }
        }
        let V = config.vocabSize
        var out = [Float](repeating: 0, count: tokens.count * V)
        Model.engineLock.lock()
        defer { Model.engineLock.unlock() }
        out.withUnsafeMutableBufferPointer { forwardSequences(tokens, caches: caches, into: $0.baseAddress!) }
        return (0..<tokens.count).map { Array(out[$0 * V ..< ($0 + 1) * V]) }
    }

    /// `forwardBatch` for one new position in each of several caches: k and v go through scratch
    /// rows and are then copied to their own cache.
    func forwardSequences(_ tokens: [Int32], caches: [KVCache], into logits: UnsafeMutablePointer<Float>) {
        let c = config, s = scratch
        let T = tokens.count
        let dim = c.dim, hd = c.headDim, qDim = c.heads * hd, kvDim = c.kvHeads * hd, half = c.ropeDims / 2

        // Token embeddings -> x (T, dim); RoPE angles at each sequence's own position (T, ropeDims/2)
        for (t, token) in tokens.enumerated() {
            embedding.row(Int(token), into: s.x + t * dim)
            ropeAngles(position: caches[t].count, dims: c.ropeDims, base: c.ropeBase, positionScale: c.ropePositionScale,
                       freqFactors: ropeFreqFactors, cos: s.cos + t * half, sin: s.sin + t * half)
        }

        for (l, w) in layers.enumerated() {
            for t in 0..<T { rmsNorm(s.x + t * dim, weight: w.attnNorm, into: s.xb + t * dim, n: dim, eps: c.rmsEps) }

            // q, k, v for every sequence in one product each -> (T, qDim), (T, kvDim)
            w.wq.apply(s.xb, count: T, into: s.q)
            w.wk.apply(s.xb, count: T, into: s.k)
            w.wv.apply(s.xb, count: T, into: s.v)
            for (t, cache) in caches.enumerated() {
                let k = s.k + t * kvDim, v = s.v + t * kvDim
                finishQKV(w, q: s.q + t * qDim, k: k, v: v, cos: s.cos + t * half, sin: s.sin + t * half)
                (cache.keys(layer: l) + cache.count * kvDim).update(from: k, count: kvDim)
                (cache.values(layer: l) + cache.count * kvDim).update(from: v, count: kvDim)
                // Attention of this sequence's new position over its own cache
                attention(q: s.q + t * qDim, k: cache.keys(layer: l), v: cache.values(layer: l), out: s.att + t * qDim, count: 1,
                          start: cache.count, heads: c.heads, kvHeads: c.kvHeads, headDim: hd, kvStride: kvDim, scale: 1 / Float(hd).squareRoot())
            }
            outputAndFeedForward(w, count: T)
        }
        for cache in caches { cache.advance(by: 1) }
        projectLogits(rows: 0..<T, into: logits)
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
