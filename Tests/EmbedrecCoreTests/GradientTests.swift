import XCTest
@testable import EmbedrecCore

/// The analytic gradients the trainers use, against central finite differences of the loss
/// ½ (ŷ - r)² computed through the model's own forward pass.
final class GradientTests: XCTestCase {
    func makeModel(yRange: (lo: Float, hi: Float)?) throws -> MFModel {
        let m = try MFModel(config: MFConfig(nUsers: 3, nItems: 4, nFactors: 5, biases: true, yRange: yRange),
                            initStd: 0.5, seed: 11)
        m.globalBias = 0.3
        for j in 0..<3 { m.userBias[j] = Float(j) * 0.1 - 0.1 }
        for j in 0..<4 { m.itemBias[j] = 0.2 - Float(j) * 0.05 }
        return m
    }

    func loss(_ m: MFModel, _ u: Int, _ i: Int, _ r: Float) -> Double {
        let y = Double(m.output(m.rawScore(user: u, item: i)).prediction)
        return 0.5 * (y - Double(r)) * (y - Double(r))
    }

    /// d loss / d parameter by central differences on a Float parameter.
    func numeric(_ m: MFModel, _ param: UnsafeMutablePointer<Float>, _ u: Int, _ i: Int, _ r: Float) -> Double {
        let h: Float = 1e-2
        let saved = param.pointee
        param.pointee = saved + h
        let up = loss(m, u, i, r)
        param.pointee = saved - h
        let down = loss(m, u, i, r)
        param.pointee = saved
        return (up - down) / Double(2 * h)
    }

    func checkAll(yRange: (lo: Float, hi: Float)?) throws {
        let m = try makeModel(yRange: yRange)
        let k = m.k
        for (u, i, r) in [(0, 1, Float(4.0)), (2, 3, Float(1.5)), (1, 0, Float(3.0))] {
            let (_, dRaw) = m.lossGradient(raw: m.rawScore(user: u, item: i), rating: r)
            let p = m.userFactors.base + u * k, q = m.itemFactors.base + i * k
            for f in 0..<k {
                XCTAssertEqual(Double(dRaw * q[f]), numeric(m, p + f, u, i, r), accuracy: 2e-3, "dL/dp[\(f)]")
                XCTAssertEqual(Double(dRaw * p[f]), numeric(m, q + f, u, i, r), accuracy: 2e-3, "dL/dq[\(f)]")
            }
            XCTAssertEqual(Double(dRaw), numeric(m, m.userBias.base + u, u, i, r), accuracy: 2e-3, "dL/db_u")
            XCTAssertEqual(Double(dRaw), numeric(m, m.itemBias.base + i, u, i, r), accuracy: 2e-3, "dL/db_i")
        }
    }

    func testLinearOutputGradientsMatchFiniteDifferences() throws { try checkAll(yRange: nil) }

    func testSigmoidRangeGradientsMatchFiniteDifferences() throws { try checkAll(yRange: (0.5, 5.5)) }

    /// One SGD step on one rating moves each parameter by -lr (dL/dθ + λ θ), with dL/dθ taken
    /// from finite differences: the update the trainer applies is the gradient it claims.
    func testOneSGDStepFollowsTheNumericGradient() throws {
        let m = try makeModel(yRange: (1, 5))
        let before = try makeModel(yRange: (1, 5))
        let u = 1, i = 2, r: Float = 4.5, k = m.k
        let data = try RatingSet(users: [Int32(u)], items: [Int32(i)], ratings: [r], count: 1, nUsers: 3, nItems: 4)
        var options = TrainOptions()
        options.optimizer = .sgd
        options.learningRate = 1e-3
        options.weightDecay = 0.1
        options.threads = 1
        m.initialisedFromData = true  // keep the global bias as set
        _ = try makeTrainer(model: m, data: data, options: options).runEpoch()
        for f in 0..<k {
            let p0 = before.userFactors.base + u * k + f
            let expected = Double(p0.pointee) - 1e-3 * (numeric(before, p0, u, i, r) + 0.1 * Double(p0.pointee))
            XCTAssertEqual(Double(m.userFactors[u * k + f]), expected, accuracy: 1e-5)
        }
        let b0 = before.itemBias.base + i
        let expectedBias = Double(b0.pointee) - 1e-3 * (numeric(before, b0, u, i, r) + 0.1 * Double(b0.pointee))
        XCTAssertEqual(Double(m.itemBias[i]), expectedBias, accuracy: 1e-5)
    }

    /// Adam's first step from zero moments moves every parameter by about lr against the sign
    /// of its gradient.
    func testFirstAdamStepMovesAgainstTheGradient() throws {
        let m = try makeModel(yRange: nil)
        let before = try makeModel(yRange: nil)
        let u = 0, i = 3, r: Float = 5, k = m.k
        let data = try RatingSet(users: [Int32(u)], items: [Int32(i)], ratings: [r], count: 1, nUsers: 3, nItems: 4)
        var options = TrainOptions()
        options.optimizer = .adam
        options.learningRate = 0.01
        options.threads = 1
        m.initialisedFromData = true
        _ = try makeTrainer(model: m, data: data, options: options).runEpoch()
        for f in 0..<k {
            let q0 = before.itemFactors.base + i * k + f
            let g = numeric(before, q0, u, i, r)
            let step = Double(m.itemFactors[i * k + f]) - Double(q0.pointee)
            XCTAssertEqual(step, g > 0 ? -0.01 : 0.01, accuracy: 1e-3)
        }
        // The biases too: Adam steps a row's bias as the entry after its factors.
        for (after, start) in [(m.userBias.base + u, before.userBias.base + u), (m.itemBias.base + i, before.itemBias.base + i)] {
            let g = numeric(before, start, u, i, r)
            XCTAssertEqual(Double(after.pointee) - Double(start.pointee), g > 0 ? -0.01 : 0.01, accuracy: 1e-3)
        }
    }
}
