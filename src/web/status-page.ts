// A plain, dependency-free live status table (Chinese first, English second). It reads
// /api/status every two seconds. The full technician page replaces it in issue 6.
export const STATUS_PAGE = `<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>社区边缘网关 Community gateway</title>
<style>body{font-family:system-ui,sans-serif;margin:1rem;color:#222}table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #ddd;padding:.3rem;text-align:left;font-size:.9rem}.off{color:#b00}.on{color:#070}
h2{font-size:1rem;margin-top:1.2rem}</style></head>
<body><h1>社区边缘网关 <small>Community gateway</small></h1><p id="hdr">加载中 Loading…</p><div id="root"></div>
<script>
const FAC={health:'健康小屋 Health station',canteen:'老年食堂 Canteen',security:'安防 Security'};
function esc(s){return String(s).replace(/[&<>"]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]))}
async function tick(){try{const s=await (await fetch('/api/status')).json();
document.getElementById('hdr').textContent=s.site.gatewayId+' · '+s.site.communityCode+' · 版本 v'+s.version;
let h='';for(const f of ['health','canteen','security']){const ds=s.devices.filter(d=>d.facility===f);if(!ds.length)continue;
h+='<h2>'+FAC[f]+'</h2><table><tr><th>设备 Device</th><th>状态 State</th><th>点位 Point</th><th>值 Value</th><th>质量 Quality</th></tr>';
for(const d of ds){const pts=Object.entries(d.points);const st=d.online===true?'<span class=on>在线 online</span>':d.online===false?'<span class=off>离线 offline</span>':'—';
if(!pts.length)h+='<tr><td>'+esc(d.id)+'</td><td>'+st+'</td><td></td><td></td><td></td></tr>';
pts.forEach(([k,r],i)=>{h+='<tr><td>'+(i?'':esc(d.id))+'</td><td>'+(i?'':st)+'</td><td>'+esc(k)+'</td><td>'+(r.withheld?'（隐私 private）':esc(r.value)+' '+esc(r.unit))+'</td><td>'+esc(r.quality)+'</td></tr>'})}
h+='</table>'}document.getElementById('root').innerHTML=h}catch(e){document.getElementById('hdr').textContent='无法连接 cannot reach gateway'}}
tick();setInterval(tick,2000);
</script></body></html>`;
