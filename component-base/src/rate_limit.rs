//! Client-side request rate limiting, like client-go's token bucket behind `--kube-api-qps` and
//! `--kube-api-burst`: requests beyond the burst wait for tokens that refill at `qps` per second.
//!
//! Off by default: rudder leaves fairness to the apiserver's priority and fairness, and a limit is for
//! sharing an apiserver politely or comparing with a stock component at the same settings.

use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tower::{Layer, Service};

/// A checked `--kube-api-qps` / `--kube-api-burst` pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RateLimit {
    Unlimited,
    /// `qps` tokens per second, at most `burst` saved up.
    TokenBucket { qps: f64, burst: NonZeroU32 },
}

/// A `--kube-api-qps` / `--kube-api-burst` pair that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Invalid {
    #[error("--kube-api-qps {0} is invalid: it must be a finite number >= 0 (0 means no client-side limit)")]
    Qps(f64),
    #[error("--kube-api-burst 0 is invalid with --kube-api-qps {0}: a limited client needs a burst of at least 1")]
    Burst(f64),
}

impl RateLimit {
    /// Checks the flags' values: qps 0 is no limit; a positive qps needs a positive burst.
    pub fn new(qps: f64, burst: u32) -> Result<Self, Invalid> {
        if !qps.is_finite() || qps < 0.0 {
            return Err(Invalid::Qps(qps));
        }
        if qps == 0.0 {
            return Ok(Self::Unlimited);
        }
        let burst = NonZeroU32::new(burst).ok_or(Invalid::Burst(qps))?;
        Ok(Self::TokenBucket { qps, burst })
    }

    /// The layer enforcing it, or none when unlimited.
    pub fn layer(self) -> Option<RateLimitLayer> {
        match self {
            Self::Unlimited => None,
            Self::TokenBucket { qps, burst } => {
                // One token every 1/qps seconds; the quota needs a non-zero period.
                let period = Duration::from_secs_f64(1.0 / qps).max(Duration::from_nanos(1));
                let quota = Quota::with_period(period)?.allow_burst(burst);
                Some(RateLimitLayer { limiter: Arc::new(RateLimiter::direct(quota)) })
            }
        }
    }
}

/// Wraps a service so each call first waits for a token (shared by every clone of the client).
#[derive(Clone)]
pub struct RateLimitLayer {
    limiter: Arc<DefaultDirectRateLimiter>,
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimited<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimited { inner, limiter: self.limiter.clone() }
    }
}

#[derive(Clone)]
pub struct RateLimited<S> {
    inner: S,
    limiter: Arc<DefaultDirectRateLimiter>,
}

impl<S, Req> Service<Req> for RateLimited<S>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send,
    Req: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        // The service polled ready is the one that must take the call: keep it, leave a clone behind.
        let clone = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, clone);
        let limiter = self.limiter.clone();
        Box::pin(async move {
            limiter.until_ready().await;
            ready.call(req).await
        })
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::time::Instant;

    use tower::ServiceExt;

    use super::*;

    #[test]
    fn flag_values() {
        let burst = |b| NonZeroU32::new(b).map(|burst| RateLimit::TokenBucket { qps: 20.0, burst });
        let cases = [
            ("zero qps is no limit", 0.0, 0, Ok(RateLimit::Unlimited)),
            ("zero qps ignores the burst", 0.0, 30, Ok(RateLimit::Unlimited)),
            ("qps with burst", 20.0, 30, burst(30).ok_or(Invalid::Burst(20.0))),
            ("qps without burst", 20.0, 0, Err(Invalid::Burst(20.0))),
            ("negative qps", -1.0, 10, Err(Invalid::Qps(-1.0))),
            ("infinite qps", f64::INFINITY, 10, Err(Invalid::Qps(f64::INFINITY))),
        ];
        for (name, qps, burst, want) in cases {
            assert_eq!(RateLimit::new(qps, burst), want, "case {name}");
        }
    }

    #[tokio::test]
    async fn calls_beyond_the_burst_wait_for_tokens() -> Result<(), Invalid> {
        // 20 per second with a burst of 5: 5 calls at once, then 5 more at 50 ms each, about 250 ms.
        let Some(layer) = RateLimit::new(20.0, 5)?.layer() else { panic!("a limited client has a layer") };
        let mut svc = layer.layer(tower::service_fn(|()| async { Ok::<_, Infallible>(()) }));
        let start = Instant::now();
        for _ in 0..10 {
            let _ = svc.ready().await;
            let _ = svc.call(()).await;
        }
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(200), "10 calls at 20/s with burst 5 took only {elapsed:?}");
        assert!(elapsed < Duration::from_secs(2), "10 calls took {elapsed:?}");
        Ok(())
    }
}
