import Eval
import Testing

// Cases come from the real data: GSM8K test ids and MATH-500 indices are given in comments, with
// outputs written the way small instruction models answer.

@Suite struct GSM8KScoring {
    @Test func theLastBoxedValueIsTheAnswer() {
        // GSM8K 0: reference 18.
        let output = "She has 16 - 3 - 4 = 9 eggs left, so she makes 9 * 2 = \\boxed{18} dollars. Tomorrow she may sell 20."
        #expect(Scorer.extract(style: .gsm8k, output: output) == "18")
        #expect(Scorer.score(style: .gsm8k, output: output, reference: "18").correct)
    }

    @Test func withoutABoxTheLastNumberIsTheAnswer() {
        let output = "16 - 3 - 4 = 9 eggs are sold.\n9 * 2 = 18\nThe answer is 18."
        #expect(Scorer.extract(style: .gsm8k, output: output) == "18")
        #expect(Scorer.score(style: .gsm8k, output: output, reference: "18").correct)
    }

    @Test func thousandsSeparatorsAndDollarSignsAreIgnored() {
        // GSM8K 611: reference "1,450,000"; GSM8K 2: reference "70000".
        #expect(Scorer.isCorrect(style: .gsm8k, extracted: "\\$1,450,000", reference: "1,450,000"))
        #expect(Scorer.isCorrect(style: .gsm8k, extracted: "1450000", reference: "1,450,000"))
        #expect(Scorer.isCorrect(style: .gsm8k, extracted: "$70,000", reference: "70000"))
        #expect(Scorer.isCorrect(style: .gsm8k, extracted: "70,\\!000", reference: "70000"))
        #expect(Scorer.score(style: .gsm8k, output: "He made a profit of $70,000.", reference: "70000").correct)
        // GSM8K 146: reference "2,125".
        #expect(Scorer.score(style: .gsm8k, output: "500 + 1500 + 125 = 2,125 pieces", reference: "2,125").correct)
    }

    @Test func trailingZeroDecimalsPercentAndUnitsAreIgnored() {
        #expect(Scorer.isCorrect(style: .gsm8k, extracted: "18.00", reference: "18"))
        #expect(Scorer.isCorrect(style: .gsm8k, extracted: "18.0", reference: "18"))
        // GSM8K 14: "What percentage … ?" reference 60.
        #expect(Scorer.isCorrect(style: .gsm8k, extracted: "60\\%", reference: "60"))
        #expect(Scorer.isCorrect(style: .gsm8k, extracted: "60%", reference: "60"))
        #expect(Scorer.isCorrect(style: .gsm8k, extracted: "18 \\text{ dollars}", reference: "18"))
        #expect(Scorer.isCorrect(style: .gsm8k, extracted: "\\text{18 eggs}", reference: "18"))
        #expect(Scorer.isCorrect(style: .gsm8k, extracted: "x = 18", reference: "18"))
        #expect(Scorer.isCorrect(style: .gsm8k, extracted: "\\frac{7}{2}", reference: "3.5"))
        #expect(!Scorer.isCorrect(style: .gsm8k, extracted: "18.5", reference: "18"))
        #expect(!Scorer.isCorrect(style: .gsm8k, extracted: "180", reference: "18"))
    }

    @Test func negativeAnswersKeepTheirSign() {
        // GSM8K 489: reference -10; GSM8K 1113: reference -3.
        #expect(Scorer.score(style: .gsm8k, output: "(-48 + 21 - 3) / 3 = -30 / 3 = -10", reference: "-10").correct)
        #expect(Scorer.isCorrect(style: .gsm8k, extracted: "-3", reference: "-3"))
        #expect(!Scorer.isCorrect(style: .gsm8k, extracted: "3", reference: "-3"))
        // A hyphen between numbers is not a minus sign.
        #expect(Scorer.extract(style: .gsm8k, output: "from 2-3 degrees") == "3")
    }

    @Test func anEchoedEmptyBoxIsNotTheAnswer() {
        let output = "I will put the final answer within \\boxed{}. 9 * 2 = 18, so the answer is \\boxed{18}. Remember: \\boxed{}"
        #expect(Scorer.extract(style: .gsm8k, output: output) == "18")
    }

    @Test func anOutputWithoutNumbersHasNoAnswer() {
        #expect(Scorer.extract(style: .gsm8k, output: "I do not know.") == nil)
        #expect(!Scorer.score(style: .gsm8k, output: "I do not know.", reference: "18").correct)
    }
}

@Suite struct MATHExtraction {
    @Test func theLastBoxWithBalancedBracesIsExtracted() {
        // MATH-500 0.
        let output = "So $r = 3$ and $\\theta = \\frac{\\pi}{2}$. The answer is $\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}$."
        #expect(Scorer.extract(style: .math, output: output) == "\\left( 3, \\frac{\\pi}{2} \\right)")
    }

    @Test func boxWithoutBracesAndFboxAreExtracted() {
        #expect(Scorer.extract(style: .math, output: "The answer is $\\boxed 5$.") == "5")
        #expect(Scorer.extract(style: .math, output: "Hence \\fbox{12}.") == "12")
        #expect(Scorer.extract(style: .math, output: "First \\boxed{1}, finally \\boxed{\\frac{1}{2}}") == "\\frac{1}{2}")
    }

    @Test func anUnclosedLastBoxFallsBackToTheBoxBeforeIt() {
        #expect(Scorer.extract(style: .math, output: "We get \\boxed{4}. Check: \\boxed{\\frac{1}{") == "4")
        #expect(Scorer.extract(style: .math, output: "no box here: the answer is 4") == nil)
    }

    @Test func nestedBracesStayInside() {
        // MATH-500 99.
        let output = "\\boxed{\\begin{pmatrix} -1/3 \\\\ 2/3 \\\\ 5/3 \\end{pmatrix}}"
        #expect(Scorer.extract(style: .math, output: output) == "\\begin{pmatrix} -1/3 \\\\ 2/3 \\\\ 5/3 \\end{pmatrix}")
    }
}

@Suite struct MATHEquivalence {
    /// (reference from MATH-500, a model's answer, MATH-500 index)
    static let equal: [(String, String, Int)] = [
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3, \\frac{\\pi}{2})", 0),
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\pi/2)", 0),
        ("\\text{Evelyn}", "Evelyn", 4),
        ("90^\\circ", "90", 7),
        ("90^\\circ", "90^{\\circ}", 7),
        ("6 - 5i", "6-5i", 15),
        ("x=5", "5", 23),
        ("1,-2", "-2, 1", 25),
        ("52_8", "52_{8}", 30),
        ("11\\sqrt2", "11\\sqrt{2}", 31),
        ("3, 5, 7", "3,5,7", 36),
        ("1.25", "\\frac{5}{4}", 44),
        ("0.15", "\\frac{3}{20}", 54),
        ("\\frac{3}{56}", "\\dfrac{3}{56}", 11),
        ("\\frac{3\\sqrt{3}}{4}", "\\frac{3}{4}\\sqrt{3}", 73),
        ("\\begin{pmatrix} -1/3 \\\\ 2/3 \\\\ 5/3 \\end{pmatrix}", "\\begin{pmatrix} -\\frac{1}{3} \\\\ \\frac{2}{3} \\\\ \\frac{5}{3} \\end{pmatrix}", 99),
        ("(3,4]", "(3, 4]", 103),
        ("\\frac43", "\\frac{4}{3}", 106),
        ("\\frac43", "4/3", 106),
        ("\\text{even}", "\\text{Even}", 120),
        ("4210_{5}", "4210_5", 127),
        ("\\dfrac{17}{50}", "0.34", 162),
        ("\\frac{270}7\\text{ degrees}", "\\frac{270}{7}", 166),
        (".0000672", "0.0000672", 176),
        ("5x - 7y + 11z + 4 = 0", "5x-7y+11z+4=0", 179),
        ("(2,\\infty)", "(2, \\infty)", 184),
        ("10,\\!080", "10080", 198),
        ("11,\\! 111,\\! 111,\\! 100", "11111111100", 217),
        ("\\text{(C)}", "C", 227),
        ("\\text{(C)}", "(C)", 227),
        ("\\frac 59", "\\frac{5}{9}", 235),
        ("\\$32,\\!348", "32348", 242),
        ("\\$32,\\!348", "\\$32,348", 242),
        ("864 \\mbox{ inches}^2", "864", 257),
        ("1\\frac{4}{5}", "\\frac{9}{5}", 264),
        ("1\\frac{4}{5}", "1.8", 264),
        ("\\left(\\frac{3}{5},\\frac{8}{3}\\right]", "(0.6, \\frac{8}{3}]", 293),
        ("5.4 \\text{ cents}", "5.4", 301),
        ("\\frac9{19}", "\\frac{9}{19}", 305),
        ("(-\\infty, 0]", "(-\\infty,0]", 307),
        ("58,500", "58500", 343),
        ("(0,9) \\cup (9,36)", "(0, 9) \\cup (9, 36)", 380),
        ("x \\in [-2,7]", "[-2,7]", 383),
        ("\\{1\\pm\\sqrt{5},-2\\}", "\\{-2, 1\\pm\\sqrt{5}\\}", 422),
        ("y = 2x + 3", "y=2x+3", 454),
        ("\\$18.90", "18.9", 459),
        ("137 \\frac{1}{2}", "137.5", 472),
        ("15\\mbox{ cm}^2", "15", 467),
        ("106^\\circ", "106^\\circ.", 499),
        ("-\\frac{35}{9}", "\\frac{-35}{9}", 163),
        ("-\\frac{35}{9}", "-35/9", 163),
        ("\\frac{\\sqrt{3}}{3}", "\\frac{1}{\\sqrt{3}}", 146),
        ("3\\sqrt{13}", "\\sqrt{117}", 8),
        ("\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}", "\\begin{bmatrix}-1&0\\\\0&-1\\end{bmatrix}", 248),
    ]

    static let different: [(String, String, Int)] = [
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "(\\frac{\\pi}{2}, 3)", 0),
        ("90^\\circ", "45", 7),
        ("52_8", "52_9", 30),
        ("(3,4]", "(3,4)", 103),
        ("(3,4]", "[3,4]", 103),
        ("\\frac{3}{56}", "0.0536", 11),
        (".0000672", "0.0000673", 176),
        ("\\text{(C)}", "D", 227),
        ("1\\frac{4}{5}", "\\frac{4}{5}", 264),
        ("2k+2", "2k", 98),
        ("\\begin{pmatrix} -1/3 \\\\ 2/3 \\\\ 5/3 \\end{pmatrix}", "\\begin{pmatrix} 1/3 \\\\ 2/3 \\\\ 5/3 \\end{pmatrix}", 99),
        ("3, 5, 7", "3, 5", 36),
        ("-\\frac{\\pi}{6}", "\\frac{\\pi}{6}", 53),
        ("5", "", 13),
    ]

    @Test(arguments: equal.indices)
    func equivalentAnswersAreAccepted(_ i: Int) {
        let (reference, answer, index) = MATHEquivalence.equal[i]
        #expect(Scorer.isCorrect(style: .math, extracted: answer, reference: reference),
                "MATH-500 \(index): '\(answer)' should equal '\(reference)' (normalised '\(Scorer.normalizeMath(answer))' vs '\(Scorer.normalizeMath(reference))')")
    }

    @Test(arguments: different.indices)
    func differentAnswersAreRejected(_ i: Int) {
        let (reference, answer, index) = MATHEquivalence.different[i]
        #expect(!Scorer.isCorrect(style: .math, extracted: answer, reference: reference),
                "MATH-500 \(index): '\(answer)' should differ from '\(reference)'")
    }

    @Test func normalisationProducesCanonicalForms() {
        #expect(Scorer.normalizeMath("\\left( 3, \\frac{\\pi}{2} \\right)") == "(3,\\frac{\\pi}{2})")
        #expect(Scorer.normalizeMath("\\dfrac12") == "\\frac{1}{2}")
        #expect(Scorer.normalizeMath("\\tfrac{1}{2}.") == "\\frac{1}{2}")
        #expect(Scorer.normalizeMath("x = \\frac{1}{2}") == "\\frac{1}{2}")
        #expect(Scorer.normalizeMath("10,\\!080") == "10080")
        #expect(Scorer.normalizeMath("50\\%") == "50")
        #expect(Scorer.normalizeMath("\\text{(C)}") == "C")
        #expect(Scorer.normalizeMath("\\boxed{7}") == "7")
        #expect(Scorer.normalizeMath("18 \\text{ integers}") == "18")
        #expect(Scorer.normalizeMath("-1/3") == "-\\frac{1}{3}")
    }

    @Test func numericValuesCoverFractionsRootsAndMixedNumbers() {
        #expect(Scorer.numericValue("\\frac12") == 0.5)
        #expect(Scorer.numericValue("0.5") == 0.5)
        #expect(Scorer.numericValue("1\\frac{4}{5}") == 1.8)
        #expect(Scorer.numericValue("2^{10}") == 1024)
        #expect(Scorer.numericValue("2k+2") == nil)
        #expect(Scorer.numericValue("52_8") == nil)
        #expect(Scorer.numericValue("\\infty") == nil)
        let root = Scorer.numericValue("2\\sqrt{3}") ?? 0
        #expect(abs(root - 2 * 3.0.squareRoot()) < 1e-12)
    }

    @Test func extractionAndComparisonWorkTogether() {
        // MATH-500 166: the reference carries a unit, the model does not.
        let output = "Each angle is $\\frac{270}{7}$ degrees, so the answer is $\\boxed{\\frac{270}{7}}$."
        let scored = Scorer.score(style: .math, output: output, reference: "\\frac{270}7\\text{ degrees}")
        #expect(scored.extracted == "\\frac{270}{7}")
        #expect(scored.correct)
        #expect(!Scorer.score(style: .math, output: "The answer is 270/7.", reference: "\\frac{270}7").correct)
    }
}
