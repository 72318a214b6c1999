import Foundation

/// Sampling settings, with llama.cpp's defaults.
public struct SamplingParams: Sendable, Equatable, Codable {
    public var temperature: Float = 0.8
    public var topK: Int = 40
    public var topP: Float = 0.95
    public var minP: Float = 0.05
    public var repeatPenalty: Float = 1.0
    /// The repeat penalty's window: the last n tokens of the history, prompt included, as
    /// llama.cpp's (-1: all of them, 0: none).
    public var repeatLastN: Int = 64
    /// OpenAI's penalties, over the answer's tokens only (as vLLM's): a token's logit loses
    /// `frequencyPenalty` per time it was written, and `presencePenalty` once if it was.
    public var presencePenalty: Float = 0
    public var frequencyPenalty: Float = 0
    /// Added to a token's logit before anything else (OpenAI's `logit_bias`; -infinity bans).
    public var logitBias: [Int32: Float] = [:]
    /// Where the answer begins in the history a sampler is given: the prompt's length.
    public var answerStart = 0
    /// Never write an end-of-generation token (llama.cpp's `--ignore-eos`): `Mode.make` bans them
    /// through `logitBias`, where the tokenizer is known.
    public var ignoreEOS = false
    /// nil draws a seed from the system.
    public var seed: UInt64? = nil

    public init() {}
    public static var greedy: SamplingParams { var p = SamplingParams(); p.temperature = 0; return p }
    public var isGreedy: Bool { temperature <= 0 }
    /// Whether anything changes the logits before the chain.
    public var adjustsLogits: Bool { repeatPenalty != 1 || presencePenalty != 0 || frequencyPenalty != 0 || !logitBias.isEmpty }
}

/// A token with its probability after the sampling chain.
public struct Candidate: Sendable {
    public var id: Int32
    public var p: Float
    public init(id: Int32, p: Float) {
        self.id = id
        self.p = p
    }
}

/// xoshiro256** seeded through SplitMix64: the same seed gives the same tokens on every machine.
public struct Xoshiro256: RandomNumberGenerator, Sendable {
    var s: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var z = seed
        func splitmix() -> UInt64 {
            z &+= 0x9E37_79B9_7F4A_7C15
            var r = z
            r = (r ^ (r >> 30)) &* 0xBF58_476D_1CE4_E5B9
            r = (r ^ (r >> 27)) &* 0x94D0_49BB_1331_11EB
            return r ^ (r >> 31)
        }
        s = (splitmix(), splitmix(), splitmix(), splitmix())
    }

    public mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0; s.3 ^= s.1; s.1 ^= s.2; s.0 ^= s.3
        s.2 ^= t
        s.3 = s.3 << 45 | s.3 >> 19
        return result
    }

    /// Uniform in [0, 1).
    public mutating func unit() -> Float { Float(next() >> 40) / Float(1 << 24) }
}

/// The llama.cpp sampler chain: logit bias, penalties, top-k, top-p, min-p, temperature, then a
/// draw. Temperature 0 is argmax (after the bias and penalties).
public struct Sampler: Sendable {
    public var params: SamplingParams
    public var rng: Xoshiro256

    public init(_ params: SamplingParams) {
        self.params = params
        rng = Xoshiro256(seed: params.seed ?? UInt64.random(in: 0 ... UInt64.max))
    }

    public mutating func sample(_ logits: UnsafeBufferPointer<Float>, history: [Int32] = []) -> Int32 {
        if params.isGreedy && !params.adjustsLogits { return argmax(logits) }
        let cands = distribution(logits, history: history)
        return draw(cands)
    }

    /// Draws from a distribution returned by `distribution`.
    public mutating func draw(_ cands: [Candidate]) -> Int32 {
        var r = rng.unit()
        for c in cands {
            r -= c.p
            if r < 0 { return c.id }
        }
        return cands.last!.id
    }

    /// The candidates left after the chain, sorted by probability, with probabilities summing to 1.
    /// Greedy settings give a single candidate with probability 1.
    public func distribution(_ logits: UnsafeBufferPointer<Float>, history: [Int32] = []) -> [Candidate] {
        let adjusted = adjustments(logits.count, history: history) { logits[Int($0)] }
        func logit(_ i: Int) -> Float { adjusted.isEmpty ? logits[i] : adjusted[Int32(i)] ?? logits[i] }

        if params.isGreedy {
            guard !adjusted.isEmpty else { return [Candidate(id: argmax(logits), p: 1)] }
            // The best untouched token is among the adjusted.count + 1 best raw ones; the lower id wins a tie.
            var best = topK(logits.count, min(adjusted.count + 1, logits.count)) { logits[$0] }.first { adjusted[$0.id] == nil }
            for (id, l) in adjusted where best == nil || l > best!.p || (l == best!.p && id < best!.id) { best = Candidate(id: id, p: l) }
            return [Candidate(id: best!.id, p: 1)]
        }

        // top-k (k <= 0 keeps all), sorted by logit
        let k = params.topK > 0 ? min(params.topK, logits.count) : logits.count
        var top = topK(logits.count, k, logit)

        // softmax over the survivors, then top-p and min-p on those probabilities
        var probs = softmax(top.map(\.p), temperature: 1)
        if params.topP < 1 {
            var cum: Float = 0, keep = probs.count
            for (i, p) in probs.enumerated() {
                cum += p
                if cum >= params.topP { keep = i + 1; break }
            }
            top.removeLast(top.count - keep); probs.removeLast(probs.count - keep)
        }
        if params.minP > 0, let pmax = probs.first {
            let keep = max(1, probs.firstIndex { $0 < params.minP * pmax } ?? probs.count)
            top.removeLast(top.count - keep)
        }

        // temperature on the remaining logits, renormalised
        let final = softmax(top.map(\.p), temperature: params.temperature)
        return zip(top, final).map { Candidate(id: $0.0.id, p: $0.1) }
    }

    /// The logits the bias and penalties change, by token: a few entries, so the chain below reads
    /// the rest from the model's logits untouched.
    func adjustments(_ vocabulary: Int, history: [Int32], logit: (Int32) -> Float) -> [Int32: Float] {
        guard params.adjustsLogits else { return [:] }
        var adjusted: [Int32: Float] = [:]
        func value(_ id: Int32) -> Float { adjusted[id] ?? logit(id) }
        for (id, bias) in params.logitBias where id >= 0 && Int(id) < vocabulary { adjusted[id] = value(id) + bias }
        if params.repeatPenalty != 1, params.repeatLastN != 0 {
            let window = params.repeatLastN < 0 ? history[...] : history.suffix(params.repeatLastN)
            for id in Set(window) where id >= 0 && Int(id) < vocabulary {
                let l = value(id)
                adjusted[id] = l > 0 ? l / params.repeatPenalty : l * params.repeatPenalty
            }
        }
        if params.presencePenalty != 0 || params.frequencyPenalty != 0 {
            var counts: [Int32: Int] = [:]
            for id in history[min(max(params.answerStart, 0), history.count)...] where id >= 0 && Int(id) < vocabulary { counts[id, default: 0] += 1 }
            for (id, n) in counts { adjusted[id] = value(id) - Float(n) * params.frequencyPenalty - params.presencePenalty }
        }
        return adjusted
    }

    func topK(_ n: Int, _ k: Int, _ logit: (Int) -> Float) -> [Candidate] {
        if k > 256 {
            let all = (0..<n).map { Candidate(id: Int32($0), p: logit($0)) }.sorted { $0.p > $1.p }
            return Array(all.prefix(k))
        }
        // Keep a bounded min-ordered buffer: cheap for k = 40 over a 150k vocabulary.
        var best: [Candidate] = []
        best.reserveCapacity(k + 1)
        var floor = -Float.infinity
        for i in 0..<n {
            let l = logit(i)
            if best.count == k && l <= floor { continue }
            let c = Candidate(id: Int32(i), p: l)
            let at = best.firstIndex { $0.p < l } ?? best.count
            best.insert(c, at: at)
            if best.count > k { best.removeLast() }
            if best.count == k { floor = best[k - 1].p }
        }
        return best
    }

    func softmax(_ logits: [Float], temperature: Float) -> [Float] {
        guard let m = logits.max() else { return [] }
        let e = logits.map { expf(($0 - m) / temperature) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }
}

public func argmax(_ x: UnsafeBufferPointer<Float>) -> Int32 {
    var best = 0
    var bestValue = x[0]
    for i in 1..<x.count where x[i] > bestValue {
        best = i
        bestValue = x[i]
    }
    return Int32(best)
}

/// Softmax probability of the most likely token.
public func topProbability(_ x: UnsafeBufferPointer<Float>) -> Float {
    let m = x.max() ?? 0
    var sum: Float = 0
    for v in x { sum += expf(v - m) }
    return 1 / sum
}
