import Engine
import Foundation

/// RelayGen's offline calibration: the small model re-scores text the large model wrote (teacher
/// forcing) and its probability margin p(top1) − p(top2) is recorded at every position. A cue's
/// delta is the mean margin inside the sentences that follow it minus the mean margin everywhere
/// else; cues with delta > 0 mark stretches the small model finds easy.
public enum Calibration {
    /// The candidate pool: discourse markers that open a reasoning step.
    public static let pool: [String] = [
        "So,", "So", "Thus,", "Thus", "Therefore,", "Therefore", "Hence,", "Hence", "Wait,", "Wait", "Alternatively,",
        "Now,", "Now", "Also,", "Also", "Similarly,", "Oh,", "First,", "First", "Next,", "Next", "Finally,", "Finally",
        "Then,", "Then", "But", "But,", "However,", "Let's", "Let me", "We", "We have", "We know", "We need", "Since",
        "Because", "Given", "Notice", "Note that", "Recall", "In other words,", "That is,", "This means", "This gives",
        "Which", "which", "and", "so", "so,", "thus", "therefore", "hence", "then", "Step", "To find", "To solve",
        "Substituting", "Simplifying", "Adding", "Subtracting", "Multiplying", "Dividing", "Calculating", "Calculate",
        "Plugging", "Solving", "Combining", "Rearranging", "Factoring", "Using", "Because of", "As a result,", "Consequently,",
        "In total,", "In summary,", "Overall,", "Putting", "Checking", "Verify", "Let", "If", "For", "Okay,", "Hmm,",
        "Actually,", "Right,", "Yes,", "No,", "Great,", "Perfect,",
    ]

    public struct Trace: Codable, Sendable {
        public var id: String
        public var prompt: [Int32]
        public var tokens: [Int32]
        public init(id: String, prompt: [Int32], tokens: [Int32]) {
            self.id = id
            self.prompt = prompt
            self.tokens = tokens
        }
    }

    /// The small model's margin when predicting each token of the trace, teacher-forced in chunks
    /// (a whole trace's logits at once would not fit in memory for a 150k vocabulary).
    public static func margins(of trace: Trace, session: Session, chunk: Int = 64) throws -> [Float] {
        let V = session.model.config.vocabSize
        var margins: [Float] = []
        var start = 0
        while start < trace.tokens.count {
            let end = min(start + chunk, trace.tokens.count)
            // Rows for the positions predicting tokens start ..< end.
            let input = trace.prompt + trace.tokens[..<(end - 1)]
            let logits = try session.sync(to: Array(input), logitsFrom: trace.prompt.count - 1 + start)
            for r in 0 ..< end - start {
                margins.append(logits.withUnsafeBufferPointer { margin(UnsafeBufferPointer(rebasing: $0[r * V ..< (r + 1) * V])) })
            }
            start = end
        }
        return margins
    }

    static func margin(_ logits: UnsafeBufferPointer<Float>) -> Float {
        var m1 = -Float.infinity, m2 = -Float.infinity
        for v in logits {
            if v > m1 { m2 = m1; m1 = v } else if v > m2 { m2 = v }
        }
        var sum: Float = 0
        for v in logits { sum += expf(v - m1) }
        return (1 - expf(m2 - m1)) / sum
    }

    public struct CueScore: Codable, Sendable {
        public var text: String
        public var delta: Double
        public var count: Int
        public var meanInside: Double
    }

    /// Scores every cue of `pool` on traces given as the text piece of each token with its margin.
    public static func score(traces: [[(piece: String, margin: Float)]], pool: [String] = pool) -> [CueScore] {
        var total = 0.0, totalCount = 0
        for t in traces { for x in t { total += Double(x.margin); totalCount += 1 } }
        var scores: [CueScore] = []
        for cue in pool {
            var inside = 0.0, insideCount = 0, occurrences = 0
            for t in traces {
                var text = ""
                var inSegment = false
                for x in t {
                    if inSegment {
                        inside += Double(x.margin)
                        insideCount += 1
                        if x.piece.contains(where: { ".!?\n".contains($0) }) { inSegment = false }
                    }
                    text += x.piece
                    if !inSegment, text.hasSuffix(cue) {
                        let before = text.dropLast(cue.count).last
                        if before == nil || before == " " || before == "\n" {
                            inSegment = true
                            occurrences += 1
                        }
                    }
                }
            }
            guard insideCount > 0, totalCount > insideCount else { continue }
            let meanInside = inside / Double(insideCount)
            let meanElsewhere = (total - inside) / Double(totalCount - insideCount)
            scores.append(CueScore(text: cue, delta: meanInside - meanElsewhere, count: occurrences, meanInside: meanInside))
        }
        return scores.sorted { $0.delta > $1.delta }
    }
}
