// Unity's marker for static methods that native code (here the WebGL
// jslib) calls through a function pointer; IL2CPP makes them callable.
using System;

namespace AOT
{
    [AttributeUsage(AttributeTargets.Method)]
    public sealed class MonoPInvokeCallbackAttribute : Attribute
    {
        public MonoPInvokeCallbackAttribute(Type type) { }
    }
}
