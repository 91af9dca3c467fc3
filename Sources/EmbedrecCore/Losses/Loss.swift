/// The losses models train on, each as one value and gradient, shared by matrix factorisation
/// and the networks.
///
/// Adding a loss: a case here (its number is `EMBEDREC_LOSS_*` in embedrec.h), its branch of
/// `evaluate`, `constantOutput` and `checkTarget`, and its name in python/embedrec/_lib.py's
/// `LOSSES`. Nothing else names the losses one by one.
public enum Loss: Int32, CaseIterable, Sendable {
    case mse = 0
    case mae = 1
    /// Binary cross-entropy on the output taken as a logit (prediction = sigmoid(output)).
    case bce = 2

    public var name: String {
        switch self {
        case .mse: return "mse"
        case .mae: return "mae"
        case .bce: return "bce"
        }
    }

    /// The loss numbered `raw` (a C caller's `EMBEDREC_LOSS_*`), or an error listing them all.
    public static func numbered(_ raw: Int32) throws -> Loss {
        guard let loss = Loss(rawValue: raw) else {
            let known = allCases.map { "\($0.rawValue) (\($0.name))" }.joined(separator: ", ")
            throw CoreError.invalid("loss must be one of \(known), got \(raw)")
        }
        return loss
    }

    /// For one example with output `y` (the prediction; for bce, its logit) and target `t`: the
    /// loss, the absolute error of the prediction (the history's MAE column), and the loss's
    /// derivative with respect to `y`. Callers scale the gradient (by 1 / batch for a mean).
    @inline(__always)
    public func evaluate(output y: Float, target t: Float) -> (value: Double, absError: Double, gradient: Float) {
        switch self {
        case .mse:
            let e = y - t
            return (Double(e * e), Double(abs(e)), 2 * e)
        case .mae:
            let e = y - t
            return (Double(abs(e)), Double(abs(e)), e > 0 ? 1 : (e < 0 ? -1 : 0))
        case .bce:
            let p = sigmoid(y)
            let pc = min(max(Double(p), 1e-7), 1 - 1e-7)
            return (-(Double(t) * _log(pc) + Double(1 - t) * _log(1 - pc)), Double(abs(p - t)), p - t)
        }
    }

    /// The output a constant model gives to predict the targets' mean `mean` (before an output
    /// squashing such as y_range): the mean itself, or its logit for bce.
    public func constantOutput(mean: Double) -> Double {
        switch self {
        case .mse, .mae:
            return mean
        case .bce:
            let m = min(max(mean, 1e-3), 1 - 1e-3)
            return _log(m / (1 - m))
        }
    }

    /// Refuses a target the loss is not defined for (bce's labels lie in [0, 1]).
    public func checkTarget(_ t: Float, at position: Int) throws {
        if self == .bce && !(0...1).contains(t) {
            throw CoreError.invalid("with the bce loss, targets must be in [0, 1]; got \(t) at position \(position)")
        }
    }
}
